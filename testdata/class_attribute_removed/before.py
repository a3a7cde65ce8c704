class Limits:
    LOW = 1
    HIGH = 10
    OLD_NAME = "gone"

    def span(self):
        return self.HIGH - self.LOW
