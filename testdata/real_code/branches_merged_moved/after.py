import os as _os


class Closer:
    def __init__(self, file):
        self.file = file

    def close(self):
        return "nt"

    def __del__(self):
        self.close()


closer = Closer(None)
