_TEMPLATE = "Decodes {kind}."


def decode(text):
    return text.upper()


decode.__doc__ = _TEMPLATE.format(kind="text")
