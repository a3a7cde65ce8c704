import sys

try:
    import _pyhot_no_such_speedups
except ImportError:
    def fallback():
        return 2

if sys.version_info >= (3,):
    def version():
        return "three"

with open(__file__) as _handle:
    def first_line():
        return "with"


class Holder:
    if True:
        def method(self):
            return "b"
