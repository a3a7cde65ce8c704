class Vector:
    __slots__ = ("x", "y", "z")

    def norm(self):
        return self.x + self.y
