class ShutDown(Exception):
    """Raised when the queue is shut down."""


class Empty(Exception):
    "Raised by get() on an empty queue."
    pass


class Full(Exception):
    pass
