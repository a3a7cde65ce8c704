import atexit
import sys

if sys.platform == "win32":
    import nt

    def cleanup():
        return "win"
else:
    import posix

    def cleanup():
        return "posix"
    atexit.register(cleanup)


def other():
    return 2
