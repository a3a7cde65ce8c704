def kept():
    return 1


class Box:
    def stays(self):
        return 1
