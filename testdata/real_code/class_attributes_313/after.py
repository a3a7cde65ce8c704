# A comment that moves everything down by two lines
# (line numbers, __firstlineno__).
class Tracker:
    """Tracks one thing."""

    def __init__(self):
        self.seen = 0
        self.last = None

    def nested(self):
        class Inner:
            pass
        return Inner
