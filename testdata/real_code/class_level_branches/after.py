import sys


class Path:
    if sys.platform == "pyhot-nowhere":
        def sep(self):
            return "\\"
    else:
        def sep(self):
            return "//"

    def join(self, a, b):
        return a + self.sep() + b
