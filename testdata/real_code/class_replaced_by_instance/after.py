class _Null:
    def __repr__(self):
        return "null"


_Null = _Null()


def user():
    return 2
