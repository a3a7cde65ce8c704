import sys

try:
    import _pyhot_no_such_speedups
except ImportError:
    def fallback():
        return 1

if sys.version_info >= (3,):
    def version():
        return "3"

with open(__file__) as _handle:
    def first_line():
        return "with"


class Holder:
    if True:
        def method(self):
            return "a"
