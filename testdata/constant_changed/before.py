RETRIES = 3


def retries():
    return RETRIES
