"""Bytes in, NumPy arrays out, and back: requests' JSON in and responses' JSON out.

A body is read once by :mod:`service.api.jsonread` (one validating pass without the GIL, numbers
converted straight into float64, nothing else built until asked for, memory bounded whatever
the body's structure); :func:`read_request` turns it into a request document whose tensors are
:class:`~service.api.jsonread.JsonArray`. Lists of numbers that come as Python objects (the
catalogue's examples, tests) are converted by NumPy, and slow paths run only to explain an
error: where an array is ragged, which entry is a string, which value is NaN.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from itertools import chain
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel

from service.api import jsonread
from service.api.problems import Pieces
from service.validation.errors import (
    MAX_LISTED_ERRORS,
    StructureError,
    UnsupportedMediaType,
    body_loc,
    index_text,
)
from service.validation.finite import MAX_DIMENSIONS, require_finite

Path = tuple[str, ...]
NO_ARRAYS: frozenset[Path] = frozenset()
#: The tensor fields of a ``/v1`` request: JsonArray wherever they are arrays.
TENSOR_ARRAYS: dict[str, frozenset[Path]] = {
    name: frozenset({()}) for name in ("predictions", "targets", "sample_weight", "mask")
}

NUMPY = orjson.OPT_SERIALIZE_NUMPY
JSON_MEDIA_TYPES = ("application/json",)


def check_json_content_type(raw: str | None) -> None:
    """415 unless the body is declared JSON (``application/json`` or any ``+json`` type).

    ``raw`` is the Content-Type header. A request without one is read as JSON, so a bare
    ``curl --data-binary`` works.
    """
    if raw is None:
        return
    media_type = raw.split(";", 1)[0].strip().lower()
    if media_type in JSON_MEDIA_TYPES or media_type.endswith("+json"):
        return
    raise UnsupportedMediaType(
        f"expected Content-Type: application/json, got {raw!r} "
        "(with curl, send -H 'Content-Type: application/json' or use --json)",
    )


#: Bodies up to this size are parsed by orjson (the old fast path: ~3 us for a small request,
#: where the reader costs ~70 us of fixed overhead); orjson's worst case, ~40 bytes of Python
#: objects per byte of nested arrays, is then at most a few MiB. Larger bodies go to the reader.
SMALL_BODY = 64 * 1024


def read_request(
    body: bytes | bytearray,
    model: type[BaseModel],
    arrays: Mapping[str, frozenset[Path]],
    closed: Mapping[str, tuple[Collection[str], Collection[str]]] | None = None,
) -> dict[str, Any]:
    """The request document: a dict of the top-level values, whose tensors (the arrays at one
    of ``arrays[field]``'s paths) are :class:`~service.api.jsonread.JsonArray` in a large body.

    A large body is read by :mod:`service.api.jsonread`, once: unknown top-level keys (not fields
    of ``model``) are a 422 before any value is built, and so are the keys of an object that
    ``closed[field] = (allowed, also accepted)`` does not accept (the loss's params), when
    there are more than a 422 lists (fewer go on to Pydantic, which names them as before);
    other values are built only within the reader's memory budget (a 413 past it). A body of at
    most :data:`SMALL_BODY` bytes is parsed by orjson and checked the same way; one orjson
    refuses (``NaN``, ``1e400``, malformed) goes to the reader, which reads or explains it with
    the same values and messages as for any body.
    """
    if len(body) <= SMALL_BODY:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict):
            refuse_unknown(document, model.model_fields, tolerated=0)
            for field, (allowed, also) in (closed or {}).items():
                refuse_unknown(document.get(field), allowed, also, field)
            return document
    document = jsonread.read(body)
    refuse_unknown(document, model.model_fields, tolerated=0)
    for field, (allowed, also) in (closed or {}).items():
        if field in document and document.kind(field) == "object":
            refuse_unknown(document, allowed, also, field)
    return {key: document.value(key, arrays.get(key, NO_ARRAYS)) for key in document}


def may_hold_booleans(body: bytes | bytearray) -> bool:
    """Whether a small body (one orjson parses into lists) may hold ``true`` or ``false``; a
    large one is read by the reader, which tells booleans from numbers itself."""
    return len(body) > SMALL_BODY or b"true" in body or b"false" in body


def refuse_unknown(
    owner: Any,
    allowed: Collection[str],
    also: Collection[str] = (),
    field: str | None = None,
    tolerated: int = MAX_LISTED_ERRORS,
) -> None:
    """A 422 listing the keys of a JSON object (a dict; or a body's top-level object, ``field``
    None, or the object under ``field``) that are neither ``allowed`` nor ``also`` accepted (at
    most ``MAX_LISTED_ERRORS``), when there are more than ``tolerated``: in the words of
    Pydantic's extra_forbidden errors (which name the ``allowed`` ones), so a few unknown keys
    left to Pydantic read the same. Counted in one pass over the keys: Pydantic builds an error
    per key first (a million unknown params took seconds and gigabytes). Anything but an object
    is left to Pydantic."""
    if isinstance(owner, dict):
        if len(owner) <= tolerated:
            return
        if isinstance(allowed, dict) and owner.keys() <= allowed.keys():
            return  # the common case, a set comparison at C speed
        accepted = {*allowed, *also}
        unknown = [key for key in owner if key not in accepted]
        names, count = unknown[:MAX_LISTED_ERRORS], len(unknown)
    elif isinstance(owner, jsonread.Document):
        accepted_list = [*allowed, *also]
        names, count = owner.unknown_keys(accepted_list, within=field, limit=MAX_LISTED_ERRORS)
    else:
        return
    if count <= tolerated:
        return
    what, loc = ("parameter", ["body", field]) if field else ("field", ["body"])
    listed = ", ".join(allowed) or "none"
    items = [
        {"loc": [*loc, name], "msg": f"unknown {what} {name!r}; allowed: {listed}"}
        for name in names
    ]
    first, *more = items
    raise StructureError(first["loc"], str(first["msg"]), more, count - len(items))


ENCODE_CHUNK = 65_536  # array entries per orjson call: ~3 ms, so the GIL changes hands often
#: Stands for a large array in the skeleton document; random per process, so no string a
#: client sends (an evaluate label, say) can be taken for it.
_BLOCK_MARKER = f"loss-service-block-{os.urandom(8).hex()}-"


def encode(payload: dict[str, Any]) -> bytes | Pieces:
    """orjson straight from NumPy arrays (no ``tolist``); callers guarantee finite values.

    Arrays of more than ``ENCODE_CHUNK`` entries are encoded in blocks spliced into the
    document, so no single call holds the GIL long (a 1e6-entry gradient would take ~40 ms),
    and the answer stays in those pieces (:class:`~service.api.problems.Pieces`).
    """
    if not _holds_large_array(payload):
        return orjson.dumps(payload, option=NUMPY)
    blocks: list[np.ndarray] = []
    skeleton = orjson.dumps(_swap_blocks(payload, blocks), option=NUMPY)
    if not blocks:
        return skeleton
    pieces = skeleton.split(f'"{_BLOCK_MARKER}'.encode())
    out: list[bytes | memoryview] = [pieces[0]]
    for piece in pieces[1:]:
        index, rest = piece.split(b'"', 1)
        _array_pieces(blocks[int(index)], out)
        out.append(rest)
    return Pieces(out)


def _swap_blocks(node: Any, blocks: list[np.ndarray]) -> Any:
    """``node`` with each large array replaced by a marker string naming its place in
    ``blocks``. (A module function, not a closure calling itself: such a closure is a reference
    cycle, and it kept every response's arrays alive until a full garbage collection.)"""
    if isinstance(node, dict):
        return {key: _swap_blocks(value, blocks) for key, value in node.items()}
    if isinstance(node, np.ndarray) and node.size > ENCODE_CHUNK:
        blocks.append(node)
        return f"{_BLOCK_MARKER}{len(blocks) - 1}"
    return node


def _holds_large_array(node: dict[str, Any]) -> bool:
    for value in node.values():
        if isinstance(value, np.ndarray):
            if value.size > ENCODE_CHUNK:
                return True
        elif isinstance(value, dict) and _holds_large_array(value):
            return True
    return False


def _array_pieces(array: np.ndarray, out: list[bytes | memoryview]) -> None:
    """Append a large array's JSON to ``out`` in pieces: blocks of about ``ENCODE_CHUNK``
    entries, each orjson's output without its brackets (a view, not a copy), and the commas
    and brackets between them."""
    array = np.ascontiguousarray(array)
    out.append(b"[")
    if array.ndim > 1 and (array[0].size or 1) > ENCODE_CHUNK:
        for number, part in enumerate(array):
            if number:
                out.append(b",")
            _array_pieces(part, out)
    else:
        step = max(1, ENCODE_CHUNK // (array[0].size or 1)) if array.ndim > 1 else ENCODE_CHUNK
        for start in range(0, array.shape[0], step):
            if start:
                out.append(b",")
            out.append(memoryview(orjson.dumps(array[start : start + step], option=NUMPY))[1:-1])
    out.append(b"]")


def to_array(value: Any, field: str, *, check_booleans: bool = True) -> np.ndarray:
    """A JSON array of numbers (a :class:`~service.api.jsonread.JsonArray` of the body, or a
    nested Python list) as a C-contiguous float64 array.

    Raises StructureError for anything that is not a rectangular array of numbers of at most
    32 dimensions, and DomainError for NaN or infinite entries, each naming the first
    offending index. ``check_booleans=False`` skips looking for booleans in a list (NumPy reads
    ``[1, true]`` as ``[1, 1]``), for a caller that knows its body holds none
    (:func:`may_hold_booleans`).
    """
    if isinstance(value, jsonread.JsonArray):
        return value.to_array(field)
    if isinstance(value, np.ndarray):  # an array already (callers inside the service)
        return _finish(value, field)
    if not isinstance(value, list):
        raise StructureError(
            body_loc(field),
            f"{field} must be an array of numbers, got {_json_kind(value)}",
        )
    try:
        raw = np.asarray(value)
        if raw.dtype.kind == "O":  # integers beyond int64 (or junk): floats if all are numbers
            raw = np.asarray(value, dtype=np.float64) if _first_problem(value, []) is None else raw
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise _explain_bad_array(value, field) from None
    if raw.dtype.kind not in "iuf" or raw.ndim > MAX_DIMENSIONS:
        raise _explain_bad_array(value, field)
    if check_booleans and holds_boolean(value, raw.ndim):
        raise _explain_bad_array(value, field)
    return _finish(raw, field)


def _finish(raw: np.ndarray, field: str) -> np.ndarray:
    array = np.ascontiguousarray(raw, dtype=np.float64)
    require_finite(array, field)
    return array


def nested_size(value: Any) -> int:
    """Elements of a rectangular nested list, read along its first entries (a ragged list is
    refused by the conversion anyway); an array's size; 1 for a scalar."""
    if isinstance(value, jsonread.JsonArray | np.ndarray):
        return value.size
    size = 1
    while isinstance(value, list):
        size *= len(value)
        if not value:
            break
        value = value[0]
    return size


def holds_boolean(value: list, ndim: int) -> bool:
    """Whether a rectangular nested list holds a bool; flattens and scans at C speed."""
    level: Any = value
    for _ in range(ndim - 1):
        level = chain.from_iterable(level)
    return bool in set(map(type, level))


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _explain_bad_array(value: list, field: str) -> StructureError:
    """Walk the nested lists (error path only) to name the first entry that breaks the array."""
    problem = _first_problem(value, [])
    if problem is None:  # NumPy refused for a reason the walk cannot see (e.g. > 64 dims)
        return StructureError(
            body_loc(field),
            f"{field} is not a rectangular array of at most {MAX_DIMENSIONS} dimensions",
        )
    index, message = problem
    return StructureError(body_loc(field, *index), f"{index_text(field, index)} {message}")


def _first_problem(node: list, index: list[int]) -> tuple[list[int], str] | None:
    if len(index) >= MAX_DIMENSIONS:
        return index, f"is nested too deeply: arrays may have at most {MAX_DIMENSIONS} dimensions"
    nested = [isinstance(item, list) for item in node]
    if any(nested) and not all(nested):
        position = nested.index(not nested[0])
        what = "an array" if nested[position] else _json_kind(node[position])
        first = "an array" if nested[0] else _json_kind(node[0])
        return (
            [*index, position],
            f"is {what} but the first entry beside it is {first}: ragged arrays are not allowed",
        )
    if node and nested[0]:
        width = len(node[0])
        for position, item in enumerate(node):
            if len(item) != width:
                return (
                    [*index, position],
                    f"has {len(item)} entries but the entry before it has {width}: "
                    "ragged arrays are not allowed",
                )
        for position, item in enumerate(node):
            found = _first_problem(item, [*index, position])
            if found is not None:
                return found
        return None
    for position, item in enumerate(node):
        if isinstance(item, bool) or not isinstance(item, int | float):
            return [*index, position], f"is {_json_kind(item)}; expected a number"
    return None
