class Token:
    def __init__(self, text):
        self.text = text


class Base:
    pass
