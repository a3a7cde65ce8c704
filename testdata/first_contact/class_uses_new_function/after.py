def doubled(n):
    return 2 * n


class Prices:
    BASE = 1
    DOUBLE = doubled(BASE)

    def get(self):
        return self.BASE
