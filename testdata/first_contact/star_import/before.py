import os


def path():
    return os.sep
