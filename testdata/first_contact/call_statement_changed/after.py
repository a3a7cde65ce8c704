LABEL = "y".upper()


def label():
    return LABEL
