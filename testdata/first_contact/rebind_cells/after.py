def twice(f):
    def wrapper():
        return f() * 2
    return wrapper


def shout(f):
    def wrapper():
        return f().upper()
    return wrapper


@shout
def word():
    return "b"


earlier = twice(word)
