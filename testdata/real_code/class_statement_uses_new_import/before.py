class Box:
    size = 1

    def get(self):
        return self.size
