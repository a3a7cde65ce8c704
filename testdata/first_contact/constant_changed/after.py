RATE = 3
NAMES = ("a", "b", "c")


def price(x):
    return x * RATE
