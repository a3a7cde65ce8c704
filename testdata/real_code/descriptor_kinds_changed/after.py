class Tool:
    def make(self, text):
        return text + "!"

    @staticmethod
    def build(text):
        return text + "!"

    @staticmethod
    def plain(text):
        return text + "!"


make = Tool.make
build = Tool.build
plain = Tool.plain
tool = Tool()
bound = [tool.plain, Tool.build]
