def dump(data):
    return str(data)
