_TEMPLATE = "Turns {kind} into words."
DESCRIPTION = _TEMPLATE.format(kind="text")


class Decoder:
    summary = DESCRIPTION.upper()


def decode(text):
    return text.lower()


decode.__doc__ = _TEMPLATE.format(kind="text")
