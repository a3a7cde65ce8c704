class Empty(Exception):
    "Raised by get() on an empty queue."
    pass


class Full(Exception):
    pass
