class Point:
    def __new__(cls, x=0):
        self = super().__new__(cls)
        self.made = True
        return self

    def __init__(self, x=0):
        self.x = x
