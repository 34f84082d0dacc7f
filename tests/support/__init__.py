"""Helpers shared across the test folders (never imported from a ``test_*.py`` module)."""
