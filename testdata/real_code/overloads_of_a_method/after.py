from typing import overload


class Scale:
    @overload
    def times(self, x: int) -> int: ...

    @overload
    def times(self, x: float) -> float: ...

    @overload
    def times(self, x: complex) -> complex: ...

    def times(self, x):
        """Three times."""
        return 3 * x


times = Scale().times
