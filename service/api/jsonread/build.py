"""Python values from the walk's tokens: what ``decode_json_object(body)[key]`` gave.

Two number semantics, as the service had them:

- orjson's, for a body orjson accepts: integers in [-2**63, 2**64) are ``int``, larger ones
  and every fraction or exponent ``float``. Containers that no requested path reaches into are
  built by ``orjson.loads`` of their text (a ``SUBTREE`` token): the same objects as before.
- Python ``json``'s with ``parse_int`` (``service.api.codec._parse_int``), for a body only it
  accepted (``NaN``, ``Infinity``, numbers beyond the double range, a byte order mark): an
  integer of at most 18 characters is ``int``, anything else the correctly rounded ``float``,
  ``NaN``/``Infinity`` the float nan/inf.

Floats come from the number tape (already the correctly rounded double, as ``float(text)``).
Memory: the caller refuses a value before this runs if its estimate (:mod:`.costs`) is past the
budget; tokens are turned into lists of ints a block at a time.
"""

from __future__ import annotations

from typing import Any

import orjson

from service.api.jsonread import walk
from service.api.jsonread.json_array import JsonArray
from service.api.jsonread.scanned import Scanned

BLOCK = 4096  # token rows made Python ints at once
INT64_MIN = -(2**63)
UINT64_LIMIT = 2**64
_NOT_INTEGER = frozenset(b".eEIN")


def build(document: Scanned, tokens, count: int) -> Any:
    """The value the ``count`` rows of ``tokens`` describe."""
    body = document.body
    stack: list[tuple[Any, Any]] = []  # (open container, the key it goes under in its parent)
    key: Any = None
    keys: dict[bytes, str] = {}  # one str per distinct key text, as orjson's key cache does
    for first in range(0, count, BLOCK):
        for kind, start, end, tape in tokens[first : first + BLOCK].tolist():
            if kind == walk.KEY:
                raw = bytes(body[start:end])  # hashable when the body is a bytearray
                key = keys.get(raw)
                if key is None:
                    key = keys[raw] = decode_string(body, start, end)
                continue
            if kind == walk.OPEN_OBJECT or kind == walk.OPEN_ARRAY:
                stack.append(({} if kind == walk.OPEN_OBJECT else [], key))
                continue
            if kind == walk.CLOSE:
                value, key = stack.pop()
            elif kind == walk.NUMBER:
                value = _number(document, start, end, tape)
            elif kind == walk.STRING:
                value = decode_string(body, start, end)
            elif kind == walk.JSON_ARRAY:
                value = JsonArray(document, start, end, tape)
            elif kind == walk.SUBTREE:
                value = orjson.loads(memoryview(body)[start:end])
            else:
                value = kind == walk.TRUE if kind != walk.NULL else None
            if not stack:
                return value
            parent = stack[-1][0]
            if type(parent) is dict:
                parent[key] = value
            else:
                parent.append(value)
    raise AssertionError("the walk ended inside a container")


def decode_string(body: bytes | bytearray, start: int, end: int) -> str:
    """The str of the (validated) JSON string token ``body[start:end]``."""
    text = memoryview(body)[start:end]  # no copy of a long string's bytes
    if body.find(b"\\", start, end) < 0:
        return str(text[1:-1], "utf-8")
    return orjson.loads(text)  # escapes; the scan refused lone surrogates


def _number(document: Scanned, start: int, end: int, tape: int) -> int | float:
    text = document.body[start:end]
    integer = not any(byte in _NOT_INTEGER for byte in text)
    if document.stdlib_semantics:
        if integer and len(text) <= 18:
            return int(text)
    elif integer and len(text) <= 20:
        value = int(text)
        if INT64_MIN <= value < UINT64_LIMIT:
            return value
    return float(document.tape[tape])
