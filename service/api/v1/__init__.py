"""The ``/v1`` adapters: one loss (``losses``), several (``evaluate``), the catalogue."""
