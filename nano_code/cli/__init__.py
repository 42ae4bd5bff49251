"""The command line: argv and the terminal in, a session run or replayed, an exit status out (README.md)."""
