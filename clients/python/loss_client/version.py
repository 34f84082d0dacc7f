"""The client's version (the User-Agent sends it)."""

__version__ = "0.1.0"
