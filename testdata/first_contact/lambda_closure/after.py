def make(n):
    return lambda: n + 100


made = make(1)
