_methods = ['forward', 'back']


class Pen:
    def forward(self, distance):
        """Move the turtle forward by distance."""
        return distance

    def back(self, distance):
        """Move back."""
        return -distance


class Turtle(Pen):
    pass


def _make_global_funcs(functions, cls):
    for name in functions:
        method = getattr(cls, name)
        exec("def %s(*args):\n    return getattr(%s(), %r)(*args)\n" % (name, cls.__name__, name), globals())
        globals()[name].__doc__ = method.__doc__


_make_global_funcs(_methods, Turtle)
