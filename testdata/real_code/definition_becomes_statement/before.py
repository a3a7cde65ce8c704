from collections import namedtuple


class Event(namedtuple("Event", "time, action")):
    __slots__ = []


def user():
    return 1
