"""Compile (or load from numba's cache) every kernel of the reader, before ``/readyz``.

One body that reaches every kernel, with the argument types requests use (a read-only uint8
view of ``bytes``), plus one body with Python ``json`` semantics and one per error path.

Whether the cache was built from these sources is checked when the package is imported
(:mod:`service.kernels.cache`).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from service.validation.errors import ServiceError

PACKAGE = Path(__file__).parent
PREFIX = __name__.rsplit(".", 1)[0] + "."


_BODY = (
    b'{"predictions": [[0.5, -1.25e-3], [3, 12345678901234567890123]], "targets": [1, 2],'
    b' "params": {"k": 1, "\\u006b": [1]}, "inputs": [{"name": "a", "data": [[1], [2]]}],'
    b' "id": "x\\u00e9\\ud83d\\ude00", "t": true, "f": false, "n": null, "bad": [1, [2]],'
    b' "deep": [[[]]], "ints": [9223372036854775807, -9223372036854775808],'
    b' "hard": [4503599627370496.5, 2.4703282292062327208828439643411068618252990130716e-324]}'
)
_STDLIB_BODY = b'{"a": NaN, "b": [Infinity, -Infinity, 1e400], "c": 123456789012345678901}'
_MALFORMED = (b'{"a": [1,]}', b'{"a": "\xff"}', b"  ", b"[1]")


def warm() -> float:
    """Run every kernel once; returns the seconds it took (compile or cache load)."""
    from service.api.jsonread.document import read
    from service.api.jsonread.json_array import JsonArray

    started = time.perf_counter()
    for body in (_BODY, _STDLIB_BODY):
        document = read(body)
        document.unknown_keys(["predictions"], limit=2)
        for name in document:
            document.kind(name)
            value = document.value(name, arrays={(), ("*", "data")})
            if isinstance(value, JsonArray):
                with contextlib.suppress(ServiceError):
                    value.to_array(name)
                value.as_int64()
                value.number_text(0)
                with contextlib.suppress(ServiceError):
                    value.integers(value.to_array(name))
    document = read(_BODY)
    document.object_keys("params")
    document.unknown_keys(["k"], within="params")
    document.value("inputs", arrays={("*", "data")})[0]["data"].to_array("inputs")
    for body in _MALFORMED:
        with contextlib.suppress(ServiceError):
            read(body)
    return time.perf_counter() - started
