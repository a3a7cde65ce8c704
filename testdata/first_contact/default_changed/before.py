GREETING = "hello"


def greet(name="world", *, punctuation="."):
    return GREETING + " " + name + punctuation


class Greeter:
    def greet(self, name="world"):
        return GREETING + ", " + name
