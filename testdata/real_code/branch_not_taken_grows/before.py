import sys

if sys.version_info < (3, 0):
    def kind():
        return "two"
else:
    def kind():
        return "three"
