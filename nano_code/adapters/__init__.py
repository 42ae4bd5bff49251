"""All I/O of nano-code, at the edges of the pure kernel: see README.md in this folder."""
