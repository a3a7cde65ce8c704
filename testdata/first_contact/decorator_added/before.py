import functools


def shout(f):
    @functools.wraps(f)
    def wrapper(*args):
        return f(*args).upper()
    return wrapper


def greet():
    return "hi"
