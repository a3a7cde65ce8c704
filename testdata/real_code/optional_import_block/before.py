import os

try:
    from math import prod
except ImportError:
    prod = None


def total(values):
    return sum(values)
