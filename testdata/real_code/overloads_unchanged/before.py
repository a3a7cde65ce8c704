from typing import overload


@overload
def scale(value: int) -> int: ...


@overload
def scale(value: float) -> float: ...


def scale(value):
    """Twice the value."""
    return value * 2
