from dataclasses import dataclass


@dataclass(frozen=True)
class B:
    x: int = 0
