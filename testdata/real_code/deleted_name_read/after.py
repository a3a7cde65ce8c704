import string

__all__ = ["user"] + list(string.ascii_lowercase[:2])

del string


def user():
    return 1
