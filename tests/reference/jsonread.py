"""What today's decoder does, as the reference :mod:`service.api.jsonread` must match.

``reference_reading`` reads a body with :func:`decode_json_object` (the service's decoder before
the reader: orjson, with Python's ``json`` for what orjson refuses, kept here as the reference)
and converts the arrays at the request paths with ``service.api.codec.to_array`` (its path for
Python lists); ``reading`` does the same with ``service.api.jsonread``. Both return plain data (values, arrays as bytes and shape, errors as
class name + ``errors`` + ``detail``) so a test can compare them with ``==``. Nothing here
shares code with the reader.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import orjson

from service.api import codec
from service.api.jsonread import JsonArray, read
from service.validation.errors import MalformedBody, ServiceError, StructureError

#: The request paths of the service: /v1 arrays, /v2 tensor data, evaluate's parameters.
ARRAY_PATHS = frozenset({(), ("*", "data"), ("parameters",), ("parameters", "*")})
ARRAY_KEYS = ("predictions", "targets", "sample_weight", "mask")


def decode_json_object(body: bytes) -> dict[str, Any]:
    """The service's decoder before service.api.jsonread (issue 11), kept as the reference: orjson,
    and where orjson refuses (NaN, Infinity, 1e400), Python's json with long integers as
    floats; a 400 for what both refuse, the same 422 for a non-object."""
    if not body.strip():
        raise MalformedBody("the request body is empty; expected a JSON object")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as problem:
        try:
            document = json.loads(body, parse_int=_parse_int)
        except (ValueError, RecursionError):
            raise MalformedBody(f"the body is not valid JSON: {problem}") from None
    if not isinstance(document, dict):
        raise StructureError(
            ["body"], f"the request body must be a JSON object, got {_json_kind(document)}"
        )
    return document


def _parse_int(text: str) -> int | float:
    return int(text) if len(text) <= 18 else float(text)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an object" if isinstance(value, dict) else "an array"


def error(exception: ServiceError) -> tuple[str, Any, str]:
    return (type(exception).__name__, exception.errors, exception.detail)


def converted(convert) -> tuple:
    """``("array", shape, float64 bytes)`` or the error, with NumPy's warnings silenced (an
    array holding inf and -inf makes the finiteness sum warn, and tests turn warnings into
    errors)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            array = convert()
    except ServiceError as problem:
        return ("error", *error(problem))
    assert array.dtype == np.float64 and array.flags.c_contiguous
    return ("array", array.shape, array.tobytes())


def plain(value: Any) -> Any:
    """A comparable form: floats by their bits (nan, -0.0), containers recursively."""
    if isinstance(value, float):
        return ("float", value.hex() if not math.isnan(value) else "nan")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {"dict": [(key, plain(item)) for key, item in value.items()]}
    return value


def _matches(path: tuple, pattern: tuple) -> bool:
    return len(path) == len(pattern) and all(
        part == "*" or part == step for part, step in zip(pattern, path, strict=True)
    )


def _reference_value(value: Any, field: str, path: tuple, paths: frozenset) -> Any:
    """``value`` with every list at a request path converted by ``codec.to_array``."""
    if isinstance(value, list) and any(_matches(path, pattern) for pattern in paths):
        return (
            "json-array",
            codec.nested_size(value),
            converted(lambda: codec.to_array(value, field)),
        )
    if isinstance(value, list):
        return [
            _reference_value(item, field, (*path, index), paths) for index, item in enumerate(value)
        ]
    if isinstance(value, dict):
        items = value.items()
        return {
            "dict": [
                (key, _reference_value(item, field, (*path, key), paths)) for key, item in items
            ]
        }
    return plain(value)


def _reader_value(value: Any, field: str) -> Any:
    if isinstance(value, JsonArray):
        return ("json-array", value.size, converted(lambda: value.to_array(field)))
    if isinstance(value, list):
        return [_reader_value(item, field) for item in value]
    if isinstance(value, dict):
        return {"dict": [(key, _reader_value(item, field)) for key, item in value.items()]}
    return plain(value)


EMPTY = "the request body is empty; expected a JSON object"


def reference_reading(body: bytes, paths: frozenset = ARRAY_PATHS) -> Any:
    try:
        document = decode_json_object(body)
    except ServiceError as problem:
        if isinstance(problem, MalformedBody):
            return ("malformed", problem.detail == EMPTY)
        return error(problem)
    return {key: _reference_value(value, key, (), paths) for key, value in document.items()}


def reading(body: bytes, paths: frozenset = ARRAY_PATHS, record_bytes: int = 4096) -> Any:
    try:
        document = read(body, record_bytes=record_bytes)
    except ServiceError as problem:
        if isinstance(problem, MalformedBody):
            empty = problem.detail == EMPTY
            assert empty or problem.detail.startswith("the body is not valid JSON: ")
            return ("malformed", empty)
        return error(problem)
    return {key: _reader_value(document.value(key, arrays=paths), key) for key in document}


def refused_on_purpose(body: bytes) -> bool:
    """Bodies today's decoder accepts and the reader refuses by design: lone surrogates (the
    response encoder cannot write them), and anything not UTF-8 (Python's json let encoded
    surrogates through and detected UTF-16/32)."""
    try:
        decoded = decode_json_object(body)
    except ServiceError:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return _has_lone_surrogate(decoded)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(char) <= 0xDFFF for char in value)
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(
            _has_lone_surrogate(key) or _has_lone_surrogate(item) for key, item in value.items()
        )
    return False
