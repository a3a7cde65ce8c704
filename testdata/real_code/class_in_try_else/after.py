import socket

try:
    import ssl
except ImportError:
    _SSLSocket = None
else:
    _SSLSocket = ssl.SSLSocket

    class Secure(socket.socket):
        def __init__(self, context=None):
            if context is None:
                context = ssl._create_stdlib_context()
            self.context = context
            super().__init__()

        def wrapped(self):
            return isinstance(self, ssl.SSLSocket)


def user():
    return 2
