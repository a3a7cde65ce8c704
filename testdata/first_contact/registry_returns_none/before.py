handlers = {}


def on(event):
    def register(function):
        handlers[event] = function
        # Returns nothing: the module's name `start` is bound to None.
    return register


@on("start")
def start():
    return "old"


def other():
    return 1
