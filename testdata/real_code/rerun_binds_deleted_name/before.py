from string import (
    ascii_lowercase as _letters,
)

__all__ = ["code_info"] + list(_letters[:2])
del _letters


def code_info():
    return 1
