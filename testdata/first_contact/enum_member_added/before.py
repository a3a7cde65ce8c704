import enum


class Color(enum.Enum):
    RED = 1


def red():
    return Color.RED
