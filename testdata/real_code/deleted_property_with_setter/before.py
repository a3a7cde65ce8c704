class Error(Exception):
    pass


class ParsingError(Error):
    def __init__(self, source):
        Error.__init__(self, 'Source contains parsing errors: %r' % source)
        self.source = source

    @property
    def filename(self):
        """Deprecated, use `source'."""
        return self.source

    @filename.setter
    def filename(self, value):
        """Deprecated, user `source'."""
        self.source = value
