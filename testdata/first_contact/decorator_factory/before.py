def inc(f):
    def wrapper():
        return f() + 1
    return wrapper


@inc
def value():
    return 10
