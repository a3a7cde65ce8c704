_TEMPLATE = "Decodes {kind}."
DESCRIPTION = _TEMPLATE.format(kind="text")


class Decoder:
    summary = DESCRIPTION.upper()
