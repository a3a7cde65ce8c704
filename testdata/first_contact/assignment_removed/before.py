x = 1
z = 2


def f():
    return x
