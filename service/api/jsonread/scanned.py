"""What the validating pass leaves of a body: the arrays every later step reads."""

from __future__ import annotations

from typing import Any


class Scanned:
    """A scanned body: its bytes (``body``, and ``data`` as a uint8 view for the kernels), the
    double of every number token in document order (``tape``), the top-level ``members`` and
    the ``records`` of large numeric arrays' shapes; ``stdlib_semantics``: numbers are built as
    the standard library's ``json`` builds them."""

    def __init__(
        self,
        body: bytes | bytearray,
        data: Any,
        tape: Any,
        members: Any,
        records: Any,
        stdlib_semantics: bool,
    ) -> None:
        self.body = body
        self.data = data
        self.tape = tape
        self.members = members
        self.records = records
        self.stdlib_semantics = stdlib_semantics
