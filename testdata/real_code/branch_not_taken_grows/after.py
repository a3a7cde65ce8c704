import sys

if sys.version_info < (3, 0):
    def kind():
        x = "two"
        return x
else:
    def kind():
        return "three"
