def greet(name=str("there")):
    return "hello " + name
