def doubled(n):
    return 2 * n


class Prices:
    BASE = 1
    DOUBLE = doubled(BASE)

    def tripled(n):
        return 3 * n

    TRIPLE = tripled(BASE)

    def get(self):
        return self.BASE
