class Box:
    pass


def kept():
    return 1
