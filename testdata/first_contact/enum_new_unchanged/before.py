import enum


class Planet(enum.Enum):
    EARTH = (1, 2)

    def __new__(cls, mass, radius):
        obj = object.__new__(cls)
        obj._value_ = mass
        obj.radius = radius
        return obj
