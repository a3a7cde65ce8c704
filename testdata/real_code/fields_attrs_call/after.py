# attrs, with a stand-in that consumes the class body as attrs does:
# class-level field values leave the class and become __attrs_attrs__.
def _consume(cls):
    fields = {k: v for k, v in vars(cls).items() if not k.startswith("__") and not callable(v)}
    for name in fields:
        delattr(cls, name)
    cls.__attrs_attrs__ = tuple(sorted(fields.items()))
    return cls


def attrs(**options):
    return _consume


define = frozen = _consume


class attr:
    s = define = staticmethod(_consume)


@attrs(slots=False)
class Point:
    x = 0
    y = 0
    z = 0
