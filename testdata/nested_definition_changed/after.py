def make_counter(step):
    def count(value):
        return value + step * 2
    return count
