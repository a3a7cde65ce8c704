import contextlib
import os
import operator


def glob(pathname):
    return [pathname]


class _Globber:
    """Class providing shell-style pattern matching and globbing.
    """

    def __init__(self, sep, recursive=False):
        self.sep = sep
        self.recursive = recursive

    # Low-level methods

    lstat = operator.methodcaller('lstat')
    add_slash = operator.methodcaller('joinpath', '')

    @staticmethod
    def scandir(path):
        return contextlib.nullcontext(path.iterdir())


class _StringGlobber(_Globber):
    lstat = staticmethod(os.lstat)
    scandir = staticmethod(os.scandir)
    parse_entry = operator.attrgetter('path')
    concat_path = operator.add
