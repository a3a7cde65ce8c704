RATE = 4
DOUBLE = RATE * 2
LIMITS = (RATE, (DOUBLE + 1) // 2)
LABEL = "rate-" + ("high" if RATE > 3 else "low")
COUNTER = 0
NEXT = COUNTER + 1


def price(x):
    return x * DOUBLE


def bump():
    global COUNTER
    COUNTER += 1
