from string import ascii_lowercase


class Box:
    size = 1
    letters = ascii_lowercase[:3]

    def get(self):
        return self.size
