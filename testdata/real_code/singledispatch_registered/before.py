import functools


@functools.singledispatch
def show(x):
    return "object"


@show.register(int)
def _(x):
    return "int"


@show.register(str)
def _(x):
    return "str"


SHOWN = None
