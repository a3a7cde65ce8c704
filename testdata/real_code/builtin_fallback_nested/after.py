def cmp_to_key(mycmp):
    """The pure-Python cmp_to_key, shadowed by the C one below."""
    class K(object):
        def __init__(self, obj):
            self.obj = obj

        def __lt__(self, other):
            return mycmp(self.obj, other.obj) < 0  # edited
    return K


try:
    from _functools import cmp_to_key
except ImportError:
    pass


def user():
    return 2
