# Django's and pydantic's bases, with stand-ins that consume the body the
# same way: class-level field values leave the class.
class _Consume(type):
    def __new__(cls, name, bases, namespace):
        fields = {k: v for k, v in namespace.items() if not k.startswith("__") and not callable(v)}
        for key in fields:
            del namespace[key]
        namespace["_meta_fields"] = tuple(sorted(fields.items()))
        return type.__new__(cls, name, bases, namespace)


class models:
    class Model(metaclass=_Consume):
        pass


class BaseModel(metaclass=_Consume):
    pass


class User(BaseModel):
    name = ""
    age = 0
