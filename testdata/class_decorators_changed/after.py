import functools


@functools.total_ordering
class Point:
    def __init__(self, x):
        self.x = x
