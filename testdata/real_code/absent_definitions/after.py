import sys

if sys.platform == "win32":
    def native_sep():
        return "\\\\"

    class WindowsConsole:
        def write(self, text):
            return len(text) + 1

if hasattr(sys, "no_such_attribute"):
    def fromshare(info):
        return [info]


def _make_env():
    return dict(HOME="/")


environ = _make_env()
del _make_env


def kept(x):
    return x + 2
