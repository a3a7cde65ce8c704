import dataclasses


@dataclasses.dataclass
class C:
    x: float = 0
