import enum


class Color(enum.Enum):
    RED = 1
    BLUE = 2


def red():
    return Color.RED
