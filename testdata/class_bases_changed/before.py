class Base:
    pass


class Mixin:
    pass


class Service(Base):
    def run(self):
        return 1
