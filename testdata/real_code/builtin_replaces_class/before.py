class date:
    """The pure-Python date, replaced by the C one below."""

    def __init__(self, year):
        self.year = year


date.min = date(1)

try:
    from _datetime import date
except ImportError:
    pass


def user():
    return 1
