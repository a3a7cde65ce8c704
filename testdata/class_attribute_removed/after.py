class Limits:
    LOW = 1
    HIGH = 10

    def span(self):
        return self.HIGH - self.LOW
