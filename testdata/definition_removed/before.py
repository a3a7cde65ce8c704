def greet(name):
    return "hello " + name


def old_handler(request):
    return None
