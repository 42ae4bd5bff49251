"""The pure core of nano-code: data types, the transition function, the wire codec.

Nothing here does I/O or reads a clock or randomness (tests/kernel/test_purity.py
reads the imports); that is what makes every session replayable. See README.md.
"""
