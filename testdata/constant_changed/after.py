RETRIES = 5


def retries():
    return RETRIES
