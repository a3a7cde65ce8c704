import dataclasses
import enum


@dataclasses.dataclass(frozen=True)
class Point:
    x: int = 0
    y: int = 0

    def norm(self):
        return abs(self.x) + abs(self.y)


class Color(enum.Enum):
    RED = 1
    GREEN = 2

    def describe(self):
        return self.name.lower()
