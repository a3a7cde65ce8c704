def reduce(function, sequence):
    """The pure-Python reduce, shadowed by the C one below."""
    value = sequence[0]
    for item in sequence[1:]:
        value = function(value, item)  # edited
    return value


try:
    from _functools import reduce
except ImportError:
    pass

try:
    from _functools import partial
except ImportError:
    class partial:
        """The fallback partial."""

        def __new__(cls, func, *args):
            self = object.__new__(cls)
            self.func = func  # edited
            return self


def user():
    return 2
