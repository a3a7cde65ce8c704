class Box:
    def open(self):
        return "open"

    def close(self):
        return "closed"


def kept():
    return 1
