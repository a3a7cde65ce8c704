import sys

if sys.version_info >= (3, 0):
    def kind():
        return "three"
else:
    def kind():
        return "two"
