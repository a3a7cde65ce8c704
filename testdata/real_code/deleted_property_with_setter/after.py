class Error(Exception):
    pass


class ParsingError(Error):
    def __init__(self, source):
        super().__init__(f'Source contains parsing errors: {source!r}')
        self.source = source
