import sys

if sys.version_info >= (3, 0):
    def kind():
        x = "three"
        return x
else:
    def kind():
        return "two"
