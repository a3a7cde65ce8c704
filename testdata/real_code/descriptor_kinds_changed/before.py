class Tool:
    @staticmethod
    def make(text):
        return text

    @classmethod
    def build(cls, text):
        return text

    def plain(self, text):
        return text


make = Tool.make
build = Tool.build
plain = Tool.plain
tool = Tool()
bound = [tool.plain, Tool.build]
