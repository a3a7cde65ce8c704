class Settings:
    name: bytes = b"a"
    size: int = 1
    depth: float = 2.0
