def area(width: float, height: float) -> float:
    return width * height
