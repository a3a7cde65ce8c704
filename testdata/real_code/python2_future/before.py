from __future__ import absolute_import, division, print_function, unicode_literals


def half(value):
    return value / 2


def untouched():
    return "same"
