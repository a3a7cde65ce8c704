import typing


class Pair(typing.NamedTuple):
    left: int
    right: int = 1
