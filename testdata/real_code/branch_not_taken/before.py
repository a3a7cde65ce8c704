import sys

if sys.platform == "pyhot-nowhere":
    def platform():
        return "nowhere"
else:
    def platform():
        return "here"


def other():
    return 1
