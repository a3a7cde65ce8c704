_TEMPLATE = "Decodes {kind}."


def decode(text):
    return text.lower()


decode.__doc__ = _TEMPLATE.format(kind="text")
