import functools


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


@logged
def greet(name: str) -> str:
    """Says hello."""
    return "hello " + name


@logged
def part(name):
    return name


part.__doc__ = "Set below."
