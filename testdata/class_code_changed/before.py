class Registry:
    items = []
    items.append("a")
