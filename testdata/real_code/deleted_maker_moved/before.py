def walk(top):
    return [top]


def _fscodec():
    encoding = "utf-8"

    def fsencode(filename):
        return filename.encode(encoding)

    def fsdecode(filename):
        return filename.decode(encoding)

    return fsencode, fsdecode


fsencode, fsdecode = _fscodec()
del _fscodec
