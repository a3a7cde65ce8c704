import sys

LIMIT = 10


def width():
    return LIMIT
