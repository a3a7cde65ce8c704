def existing():
    return 1


import functools


class Target:
    @functools.cached_property
    def details(self):
        return 2
