"""The session layer: what owns one session, between the CLI and the driver (see README.md)."""
