class Registered:
    def __init__(self, name):
        self.name = name


class Registry:
    def __init__(self):
        self.functions = []

    def register(self, f):
        self.functions.append(f)
        return Registered(f.__name__)


registry = Registry()


@registry.register
def handler():
    return 2


def other():
    return 1
