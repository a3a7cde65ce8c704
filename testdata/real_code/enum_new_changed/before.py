import enum


class SortKey(str, enum.Enum):
    CALLS = "calls", "ncalls"
    TIME = "time", "tottime"

    def __new__(cls, *values):
        value = values[0]
        member = str.__new__(cls, value)
        member._value_ = value
        return member
