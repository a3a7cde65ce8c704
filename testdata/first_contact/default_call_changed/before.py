def greet(name=str("world")):
    return "hello " + name
