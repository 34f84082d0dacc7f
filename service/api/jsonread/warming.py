"""Compile (or load from numba's cache) every kernel of the reader, before ``/readyz``.

One body that reaches every kernel, with the argument types requests use (a read-only uint8
view of ``bytes``), plus one body with Python ``json`` semantics and one per error path.

numba keys each function's on-disk cache by its own source file only: a kernel whose helper in
another module changed would load its old machine code. So before anything is compiled, when
any source file of this package differs from the ones the cache was built from (a fingerprint
kept beside the cache), every kernel's cache index is emptied and everything is compiled
afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from pathlib import Path

from numba.core import config
from numba.core.registry import CPUDispatcher

from service.validation.errors import ServiceError

PACKAGE = Path(__file__).parent


def _fingerprint_path() -> Path:
    """Beside the cache: NUMBA_CACHE_DIR when set (an image bakes its cache there and its
    package tree is read-only), else the package's __pycache__, numba's default."""
    cache_dir = getattr(config, "CACHE_DIR", "")  # (numba's config is built at run time)
    root = Path(cache_dir) if cache_dir else PACKAGE / "__pycache__"
    return root / "jsonread-sources.sha256"


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
    fingerprint = sources_fingerprint()
    stale = _cached_fingerprint() != fingerprint
    if stale:
        forget_compiled_code()
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
    if stale:  # (written only when it changes: a warm start leaves the cache as it was)
        with contextlib.suppress(OSError):  # a read-only tree: numba would not cache either
            _fingerprint_path().write_text(fingerprint)
    return time.perf_counter() - started


def sources_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _cached_fingerprint() -> str | None:
    try:
        return _fingerprint_path().read_text()
    except OSError:
        return None


def kernels() -> list[CPUDispatcher]:
    """Every numba function of the package."""
    prefix = __name__.rsplit(".", 1)[0] + "."
    return [
        item
        for name, module in list(sys.modules.items())
        if name.startswith(prefix)
        for item in vars(module).values()
        if isinstance(item, CPUDispatcher) and item.__module__ == name
    ]


def forget_compiled_code() -> None:
    """Empty every kernel's on-disk cache index, so the next call compiles from source."""
    for dispatcher in kernels():
        cache = getattr(dispatcher, "_cache", None)  # numba's FunctionCache (or NullCache)
        if cache is not None:
            with contextlib.suppress(OSError, AttributeError):
                cache.flush()
