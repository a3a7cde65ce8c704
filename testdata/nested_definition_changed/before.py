def make_counter(step):
    def count(value):
        return value + step
    return count
