import dataclasses


@dataclasses.dataclass
class C:
    x: int = 0
