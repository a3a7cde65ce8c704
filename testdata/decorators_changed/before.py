import functools


def handler(event):
    return event
