import os
import json
VERSION = "1.1"


def here():
    return os.getcwd() != ""
