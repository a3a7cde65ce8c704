class Limits:
    MAX_ITEMS = 10

    def allowed(self, n):
        return n <= self.MAX_ITEMS
