TIMEOUT = 5


def fetch(url, timeout=TIMEOUT):
    return url, timeout
