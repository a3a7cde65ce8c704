import sys

if sys.platform == "win32":
    SEPARATOR = ";"
    NAMES = ("nt",)
else:
    SEPARATOR = ":"
    NAMES = ("posix",)


def split(text):
    return text.split(SEPARATOR)
