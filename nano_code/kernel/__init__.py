"""The pure core of nano-code: data types, the transition function, the wire codec. Nothing
here does I/O or reads a clock or randomness, so every session replays. See README.md."""
