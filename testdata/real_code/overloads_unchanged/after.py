from typing import overload


@overload
def scale(value: int) -> int: ...


@overload
def scale(value: float) -> float: ...


def scale(value):
    """Three times the value."""
    return value * 3
