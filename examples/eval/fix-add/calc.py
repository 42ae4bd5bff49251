"""A tiny calculator with one bug."""


def add(a, b):
    return a - b


def multiply(a, b):
    return a * b
