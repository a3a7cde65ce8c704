import os


def glob(pathname):
    return [pathname]
