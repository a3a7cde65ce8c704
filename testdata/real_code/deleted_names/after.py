import re

PATTERN = re.compile("a+").pattern
_scratch = PATTERN * 2

del re, _scratch


def user():
    return 2
