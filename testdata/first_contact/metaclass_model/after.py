class Field:
    def __init__(self, kind):
        self.kind = kind


class Column:
    def __init__(self, name):
        self.name = name

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.__dict__.get(self.name)


class ModelBase(type):
    """Consumes the class body as Django's does: fields become columns,
    Meta becomes _meta."""

    def __new__(mcs, name, bases, attrs):
        fields = {k: v for k, v in attrs.items() if isinstance(v, Field)}
        meta = attrs.pop("Meta", None)
        for key in fields:
            attrs[key] = Column(key)
        cls = super().__new__(mcs, name, bases, attrs)
        cls._fields = fields
        cls._meta = meta
        return cls


class Model(metaclass=ModelBase):
    pass


class Product(Model):
    stock = Field("int")

    class Meta:
        ordering = "name"

    def label(self):
        return "item"
