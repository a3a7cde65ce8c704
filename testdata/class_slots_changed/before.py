class Vector:
    __slots__ = ("x", "y")

    def norm(self):
        return self.x + self.y
