import os

try:
    from math import prod, isqrt
except ImportError:
    prod = isqrt = None


def total(values):
    return sum(values) + (isqrt(4) if isqrt else 0)
