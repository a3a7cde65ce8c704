import functools


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


@logged
def greet(name: str, punctuation: str = "!") -> str:
    """Says hello, loudly."""
    return "hello " + name + punctuation


@logged
def part(name):
    return name.strip()


part.__doc__ = "Set below."
