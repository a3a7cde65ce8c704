ENDMARKER = 0
NAME = 1
AWAIT = 2
N_TOKENS = 3

tok_name = {value: name
            for name, value in globals().items()
            if isinstance(value, int) and not name.startswith('_')}
