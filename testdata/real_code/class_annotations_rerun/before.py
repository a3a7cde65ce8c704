class Settings:
    name: str = "a"
    size: int = 1
