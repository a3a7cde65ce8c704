touched = []


class RequestProxy:
    """Like werkzeug's LocalProxy (Flask's `request`): each attribute,
    __class__ too, is the proxied object's, which outside a request does
    not exist. A reload must never look into it."""

    def __getattr__(self, name):
        touched.append(name)
        raise RuntimeError("Working outside of request context.")

    @property
    def __class__(self):
        touched.append("__class__")
        raise RuntimeError("Working outside of request context.")


request = RequestProxy()


def greet(name="world"):
    return "hi " + name
