class Limits:
    MAX_ITEMS = 20

    def allowed(self, n):
        return n <= self.MAX_ITEMS
