import sys

LIMIT = 10
_bit_width: int = 2 * sys.float_info.mant_dig + 3


def width():
    return LIMIT + _bit_width
