import sys

try:
    if sys.version_info >= (3,):
        for _i in range(1):
            def looped():
                return 2
        while True:
            def whiled():
                return 2
            break
except ImportError:
    pass
finally:
    def final():
        return 2
