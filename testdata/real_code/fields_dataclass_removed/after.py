import dataclasses


@dataclasses.dataclass(order=True)
class D:
    x: int
