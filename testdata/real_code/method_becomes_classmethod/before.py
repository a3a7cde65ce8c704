class Parser:
    def parse(self, text):
        return text.split()

    def clean(self, text):
        return text.strip()


parse = Parser().parse
