def existing():
    return 1


class Added:
    pass


def helper():
    return 3


ADDED_NAME = Added.__name__
HELPER_VALUE = helper()
