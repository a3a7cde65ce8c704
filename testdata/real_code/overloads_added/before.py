from typing import overload


def area(size):
    """The area of a square."""
    return size * size
