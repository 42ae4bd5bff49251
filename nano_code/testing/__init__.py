"""Tools for researchers: replay sessions from Python, a pytest plugin, hypothesis strategies."""
