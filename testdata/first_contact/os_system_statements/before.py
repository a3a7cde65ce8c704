import os

_tmp = os.system("echo import >> " + os.path.join(os.path.dirname(__file__), "ran.log"))
del _tmp


def f():
    return 1


LATE = os.system("echo late >> " + os.path.join(os.path.dirname(__file__), "ran.log"))
