def fsum(values):
    """Adds the values."""
    total = 0.0
    for value in values:
        total += value
    return total


def mean(values):
    return fsum(values) / len(values)
