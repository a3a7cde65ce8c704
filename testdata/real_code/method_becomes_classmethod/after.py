class Parser:
    @classmethod
    def parse(cls, text):
        return text.split(",")

    @staticmethod
    def clean(text):
        return text.strip(" ")


parse = Parser().parse
