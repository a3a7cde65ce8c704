# A comment line added above moves everything below.

def _make_accessor(name):
    def accessor(self):
        return getattr(self, "_" + name)
    return accessor


class Record:
    def __init__(self, size):
        self._size = size

    size = _make_accessor("size")


def _make_checker():
    def check(value):
        return value > 0
    return check


positive = _make_checker()
