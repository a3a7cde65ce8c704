class Cart:
    LIMIT = 5

    def total(self, n):
        return min(n, self.LIMIT)
