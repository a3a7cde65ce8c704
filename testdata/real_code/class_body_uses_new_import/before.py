def existing():
    return 1
