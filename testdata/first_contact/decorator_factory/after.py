def inc(v):
    def decorate(f):
        def wrapper():
            return f() + v
        return wrapper
    return decorate


@inc(2)
def value():
    return 10
