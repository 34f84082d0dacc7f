"""Peak memory of reading pathological bodies, measured in this process's RSS.

Run as ``python -m tests.system.jsonread_memory [case ...]``: for each case it builds the body,
resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), reads the body in each flow
(``service``: unknown keys counted, arrays at the request's paths as JsonArrays converted, the
rest built or refused with 413; ``python``: every value built as Python objects or refused)
and prints one JSON line ``{"case", "flow", "body", "peak", "ratio"}`` where ``peak`` is the
RSS high-water mark above the RSS before the read (which already held the body).
``tests/system/test_jsonread_memory.py`` runs it in a subprocess; ``bench/json_read.py`` reports
the figures.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import sys
from collections.abc import Callable

import numpy as np
import orjson

from service.validation.errors import ServiceError

TARGET_BYTES = int(os.environ.get("JSONREAD_MEMORY_BYTES", 12_000_000))


def _repeat(item: bytes, size: int) -> bytes:
    """``[item,item,...]`` of about ``size`` bytes."""
    return b"[" + b",".join([item] * (size // (len(item) + 1))) + b"]"


def _nested(depth: int, size: int) -> bytes:
    one = b"[" * depth + b"0" + b"]" * depth
    return _repeat(one, size)


def _keys(size: int) -> bytes:
    count = size // 14
    return b"{" + b",".join(b'"k%07d":0' % index for index in range(count)) + b"}"


def _numeric(serializer: Callable[[np.ndarray], bytes]) -> bytes:
    """Two arrays of random doubles, about ``TARGET_BYTES`` each (20 bytes a number)."""
    rng = np.random.default_rng(7)
    count = TARGET_BYTES // 20
    predictions = serializer(rng.standard_normal(count))
    targets = serializer(rng.random(count))
    return b'{"predictions":' + predictions + b',"targets":' + targets + b"}"


def _orjson(array: np.ndarray) -> bytes:
    return orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY)


def _stdlib(array: np.ndarray) -> bytes:
    return json.dumps(array.tolist()).encode()


VALUES: dict[str, Callable[[], bytes]] = {
    "nested-30": lambda: _nested(30, TARGET_BYTES),
    "singletons": lambda: _repeat(b"[0]", TARGET_BYTES),
    "empty-objects": lambda: _repeat(b"{}", TARGET_BYTES),
    "empty-arrays": lambda: _repeat(b"[]", TARGET_BYTES),
    "nulls": lambda: _repeat(b"null", TARGET_BYTES),
    "empty-strings": lambda: _repeat(b'""', TARGET_BYTES),
    "zeros": lambda: _repeat(b"0", TARGET_BYTES),
    "halves": lambda: _repeat(b"0.5", TARGET_BYTES),
    "long-string": lambda: b'"' + b"a" * TARGET_BYTES + b'"',
    "keys-1m": lambda: _keys(TARGET_BYTES),
}
PLACES = {
    "as unknown field": (b'{"predictions":[1],"junk":', b"}"),
    "as predictions": (b'{"predictions":', b',"targets":[1]}'),
    "as params": (b'{"predictions":[1],"params":', b"}"),
}


def _case(value: Callable[[], bytes], place: tuple[bytes, bytes]) -> Callable[[], bytes]:
    return lambda: place[0] + value() + place[1]


#: Every pathological value in every place, the 1M-key top-level object, and the numeric
#: bodies the performance issue is about; each a function making the body.
CASES: dict[str, Callable[[], bytes]] = {
    f"{name} {where}": _case(value, place)
    for name, value in VALUES.items()
    for where, place in PLACES.items()
}
CASES["top-level keys-1m"] = lambda: _keys(TARGET_BYTES)
CASES["numeric orjson.dumps"] = lambda: _numeric(_orjson)
CASES["numeric json.dumps"] = lambda: _numeric(_stdlib)


ALLOWED = ("predictions", "targets", "sample_weight", "mask", "params", "reduction", "include")


def read_as_the_service(body: bytes) -> None:
    """Unknown keys counted first (never built); a params object's closed-key check; then
    every key's value with arrays at the request paths as JsonArray, converted."""
    from service.api.jsonread import JsonArray, read

    document = read(body)
    document.unknown_keys(ALLOWED)
    for name in _names(document):
        with contextlib.suppress(ServiceError):  # 413s and 422s are answers too
            if document.kind(name) == "object":
                document.unknown_keys(["delta"], within=name)
                document.object_keys(name)
            value = document.value(name, arrays={(), ("*", "data"), ("*",)})
            if isinstance(value, JsonArray):
                value.to_array(name)


def read_as_python(body: bytes) -> None:
    """Every key's whole value as Python objects (or refused with 413)."""
    from service.api.jsonread import read

    document = read(body)
    for name in _names(document):
        with contextlib.suppress(ServiceError):
            document.value(name)


def _names(document) -> list[str]:
    try:
        return document.keys()
    except ServiceError:  # a million keys: only the ones the service knows
        return [name for name in ALLOWED if name in document]


FLOWS = {"service": read_as_the_service, "python": read_as_python}


def _rss(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _release_free_memory() -> None:
    """Give freed heap pages back to the kernel, so RSS counts only live memory."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(name: str, flow: str, body: bytes) -> dict[str, object]:
    _release_free_memory()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM to the current RSS
    before = _rss("VmRSS:")
    FLOWS[flow](body)
    peak = _rss("VmHWM:") - before
    ratio = round(peak / len(body), 2)
    return {"case": name, "flow": flow, "body": len(body), "peak": peak, "ratio": ratio}


def main(names: list[str]) -> None:
    from service.api.jsonread import warm

    warm()
    for name in names or list(CASES):
        for flow in FLOWS:
            body = CASES[name]()
            print(json.dumps(measure(name, flow, body)), flush=True)
            del body


if __name__ == "__main__":
    main(sys.argv[1:])
