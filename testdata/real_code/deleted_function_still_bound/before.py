def __hash_new(name):
    return name.upper()


def __py_new(name):
    return name


try:
    import json
    new = __hash_new
except ImportError:
    new = __py_new

del __hash_new, __py_new
