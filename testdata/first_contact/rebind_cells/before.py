def twice(f):
    def wrapper():
        return f() * 2
    return wrapper


def shout(f):
    def wrapper():
        return f().upper()
    return wrapper


@twice
def word():
    return "a"


earlier = twice(word)
