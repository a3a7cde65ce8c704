import sys

try:
    import json
except ImportError:
    _encoder = None
else:
    class Codec:
        version = json.__version__
        indent = 2

        def dumps(self, value):
            return json.dumps(value, indent=self.indent)

if sys.platform == "win32":
    class WinCodec:
        flag = 1
        kind = "win"
