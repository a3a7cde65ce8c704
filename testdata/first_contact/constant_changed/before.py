RATE = 2
NAMES = ("a", "b")


def price(x):
    return x * RATE
