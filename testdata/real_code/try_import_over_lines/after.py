try:
    from os import (
        path,
        sep,
    )
except ImportError:
    path = sep = None


def joined(a, b):
    return path.join(a, b, "x")
