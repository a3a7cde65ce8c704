from __future__ import annotations


def area(width: float, height: float) -> float:
    return width * height
