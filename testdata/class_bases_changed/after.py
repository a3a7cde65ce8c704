class Base:
    pass


class Mixin:
    pass


class Service(Base, Mixin):
    def run(self):
        return 1
