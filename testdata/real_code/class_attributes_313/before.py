class Tracker:
    """Tracks one thing."""

    def __init__(self):
        self.seen = 0

    def nested(self):
        class Inner:
            pass
        return Inner
