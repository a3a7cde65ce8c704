"""Prices for the example shop. Edit `price_of` while the shop runs."""

BASE_PRICES = {"apple": 100, "pear": 80}


def price_of(item, quantity=1):
    return BASE_PRICES[item] * quantity


class Basket:
    def __init__(self):
        self.items = []

    def add(self, item, quantity=1):
        self.items.append((item, quantity))

    def total(self):
        return sum(price_of(item, quantity) for item, quantity in self.items)
