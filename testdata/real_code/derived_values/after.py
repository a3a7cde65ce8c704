_TEMPLATE = "Turns {kind} into words."
DESCRIPTION = _TEMPLATE.format(kind="text")


class Decoder:
    summary = DESCRIPTION.upper()
