import sys

LIMIT = 3

if sys.version_info >= (3, 0):
    def kind():
        return "three"
else:
    def kind():
        return "two"
