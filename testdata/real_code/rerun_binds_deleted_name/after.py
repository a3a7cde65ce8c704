from string import (
    ascii_lowercase as _letters,
    digits,
)

__all__ = ["code_info", "digits"] + list(_letters[:2])
del _letters


def code_info():
    return 1
