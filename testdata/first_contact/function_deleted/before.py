def kept():
    return 1


def gone():
    return 2


class Box:
    def stays(self):
        return 1

    def leaves(self):
        return 2
