LABEL = "x".upper()


def label():
    return LABEL
