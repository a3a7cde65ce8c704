class Random:
    def random(self):
        return 0.5

    def binomialvariate(self, n=1):
        return n


_inst = Random()
random = _inst.random
binomialvariate = _inst.binomialvariate
