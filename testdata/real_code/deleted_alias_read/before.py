d = _dispatch = {}
d[int] = str
d[float] = str
del d


def user():
    return 1
