RATE = 2


def fails():
    raise ValueError("boom")


class Cart:
    def method(self):
        return 1
