import sys

if sys.platform == "win32":
    def native_sep():
        return "\\"

    class WindowsConsole:
        def write(self, text):
            return len(text)

if hasattr(sys, "no_such_attribute"):
    def fromshare(info):
        return info


def _make_env():
    return {"HOME": "/"}


environ = _make_env()
del _make_env


def kept(x):
    return x + 1
