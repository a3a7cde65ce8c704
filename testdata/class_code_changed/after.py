class Registry:
    items = []
    items.append("b")
