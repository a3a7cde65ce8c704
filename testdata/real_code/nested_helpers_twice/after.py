class C:
    def run(self, flag):
        if flag:
            def helper(x):
                return x + 1
        else:
            def helper(x):
                return x + 3
        return helper(1)


def outer():
    def helper():
        return 1
    first = helper()

    def helper():
        return 20
    return first + helper()
