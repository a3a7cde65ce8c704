import sys

if sys.platform == "pyhot-nowhere":
    def platform():
        return "still nowhere"
else:
    def platform():
        return "here"


def other():
    return 1
