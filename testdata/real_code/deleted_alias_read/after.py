d = _dispatch = {}
d[int] = str
d[float] = repr
del d


def user():
    return 1
