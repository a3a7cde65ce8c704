import sys

if sys.platform == "win32":
    SEPARATOR = ";"
    NAMES = ("nt", "win32")
elif sys.version_info >= (3, 0):
    SEPARATOR = ":"
    NAMES = ("posix", "unix")
    """The separator of PATH-like lists."""
else:
    pass


def split(text):
    return [part for part in text.split(SEPARATOR) if part]
