import os as _os


class Closer:
    def __init__(self, file):
        self.file = file

    if _os.name != 'nt':
        def close(self, unlink=_os.unlink):
            return "posix"

        def __del__(self):
            self.close()

    else:
        def close(self):
            return "nt"


closer = Closer(None)
