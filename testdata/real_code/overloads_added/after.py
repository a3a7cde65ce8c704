from typing import overload


@overload
def area(size: int) -> int: ...


@overload
def area(size: float) -> float: ...


def area(size):
    """The area of a square."""
    return size * size
