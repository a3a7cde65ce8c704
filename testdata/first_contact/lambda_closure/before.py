def make(n):
    return lambda: n + 1


made = make(1)
