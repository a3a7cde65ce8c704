class Calculator:
    def add(self, a, b):
        print("adding", a, b)
        return a + b
