import os
from json import *


def path():
    return os.sep
