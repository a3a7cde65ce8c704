class Registry:
    def __init__(self):
        self.types = _types_map_default.copy()


def _default_types():
    global types_map, _types_map_default
    types_map = _types_map_default = {
        '.js': 'text/javascript',
        '.css': 'text/css',
    }


_default_types()
