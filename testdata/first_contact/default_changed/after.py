GREETING = "hello"


def greet(name="there", *, punctuation="!"):
    return GREETING + " " + name + punctuation


class Greeter:
    def greet(self, name="you"):
        return GREETING + ", " + name
