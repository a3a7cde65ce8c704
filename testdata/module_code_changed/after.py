import atexit


def flush():
    pass


atexit.register(flush)
print("registered")
