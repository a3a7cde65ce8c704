import json


def dump(data):
    return json.dumps(data)
