class SSLObject:
    def cipher(self):
        """The cipher in use."""
        return None

    def get_verified_chain(self):
        """The verified certificate chain."""
        return []


def _sslcopydoc(func):
    """Copy docstring from SSLObject to SSLSocket"""
    func.__doc__ = getattr(SSLObject, func.__name__).__doc__
    return func


class SSLSocket:
    @_sslcopydoc
    def cipher(self):
        return None

    @_sslcopydoc
    def get_verified_chain(self):
        return []
