class Token:
    def __new__(cls, text):
        return super().__new__(cls)

    def __init__(self, text):
        self.text = text


class Base:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)

    def __class_getitem__(cls, item):
        return cls


TOKEN = Token("x").text
