import sys

try:
    if sys.version_info >= (3,):
        for _i in range(1):
            def looped():
                return 1
        while True:
            def whiled():
                return 1
            break
except ImportError:
    pass
finally:
    def final():
        return 1
