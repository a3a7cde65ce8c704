def ceil(x):
    return -int(-x // 1)


def floor(x):
    return int(x // 1)


try:
    from math import *
except ImportError:
    pass

__ceil__ = ceil
__floor__ = floor
