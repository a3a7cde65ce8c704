class Prices:
    BASE = 1

    def get(self):
        return self.BASE
