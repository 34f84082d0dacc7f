"""Tensors of the Open Inference Protocol: JSON data or little-endian bytes in, float64 out,
and back again.

A request tensor is ``{"name", "shape", "datatype", "data"}`` with ``data`` flat (row-major) or
nested; with Triton's binary tensor extension, ``parameters.binary_data_size`` replaces
``data`` and the bytes follow the JSON header. Datatypes FP32, FP64, INT32 and INT64 are
accepted for every input. FP tensors are read as float64; INT tensors as the exact integers
sent (int64), checked against their datatype's range as integers, so that array params
(``target_lengths``, ...) and messages carry the value sent (2**63 - 1 is not 2**63). What a
loss computes on is float64 (API.md: "All arithmetic is float64"): the protocol converts the
tensor inputs there. Outputs are FP64, or FP32 when the predictions were FP32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from typing import Any, Literal, NoReturn

import numpy as np

from service.api.codec import holds_boolean, to_array
from service.api.jsonread import JsonArray
from service.api.jsonread.arrays import FRACTIONAL, INTEGRAL
from service.api.v2.errors import MalformedTensorData
from service.validation.errors import (
    DomainError,
    NonFiniteResult,
    StructureError,
    body_loc,
    index_text,
)
from service.validation.finite import MAX_DIMENSIONS, first_non_finite, require_finite

Datatype = Literal["FP32", "FP64", "INT32", "INT64"]
#: Little-endian, as the binary tensor extension defines its bytes.
DTYPES: dict[str, np.dtype] = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
}
INTEGER_DATATYPES = frozenset({"INT32", "INT64"})


def inputs_loc(name: str, *rest: str | int) -> list[str | int]:
    return ["body", "inputs", name, *rest]


def element_count(shape: Sequence[int]) -> int:
    return math.prod(shape)


def byte_size(shape: Sequence[int], datatype: str) -> int:
    """What ``binary_data_size`` must be: elements x the datatype's item size."""
    return element_count(shape) * DTYPES[datatype].itemsize


def from_json(name: str, datatype: str, shape: Sequence[int], data: Any) -> np.ndarray:
    """JSON ``data`` (flat row-major, or nested in the declared shape): float64 for FP
    datatypes, the exact integers as int64 for INT ones."""
    if not isinstance(data, list | JsonArray):
        raise StructureError(
            inputs_loc(name, "data"),
            f"{name}: data must be an array of numbers (flat or nested), got {type(data).__name__}",
        )
    if datatype not in INTEGER_DATATYPES:
        array = to_array(data, name)  # rectangular, numbers only, finite, float64
    elif isinstance(data, JsonArray):
        array = integers_from_json(name, datatype, data)
    else:
        array = integers_from_list(name, datatype, data)
    expected = element_count(shape)
    if array.ndim > 1 and array.shape != tuple(shape):
        raise StructureError(
            inputs_loc(name, "data"),
            f"{name}: nested data has shape {list(array.shape)} but the tensor's shape is "
            f"{list(shape)}; send data flat (row-major) or nested in that shape",
        )
    if array.size != expected:
        raise StructureError(
            inputs_loc(name, "data"),
            f"{name}: shape {list(shape)} needs {expected} values but data holds {array.size}",
        )
    return array.reshape(shape)


def integers_from_list(name: str, datatype: str, data: list) -> np.ndarray:
    """The JSON ``data`` of an INT32 / INT64 tensor, nested Python lists, as exact int64.

    Python ints within int64 convert exactly (NumPy makes an int64 array of them). Anything
    else (a float, or an int from 2**63 on, which NumPy would round to float64 beside others)
    is read one Python number at a time, so a non-integer or out-of-range value is reported
    as it was sent. The structure (rectangular, numbers only, no booleans, finite) is checked
    as for every array, with the same messages.
    """
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raw = None  # ragged or junk: to_array below says what
    if (
        raw is not None
        and raw.dtype.kind == "i"
        and raw.ndim <= MAX_DIMENSIONS
        and not holds_boolean(data, raw.ndim)
    ):
        return _in_range(raw.astype(np.int64, copy=False), name, datatype)
    shape = to_array(data, name).shape  # raises for anything that is not an array of numbers
    values: Any = data
    for _ in range(len(shape) - 1):
        values = chain.from_iterable(values)
    low, high = _limits(datatype)
    exact = []
    for position, value in enumerate(values):
        number = value
        if isinstance(value, float):
            if not value.is_integer():
                _refuse(name, shape, position, value, f"is not an integer (datatype {datatype})")
            number = int(value)
        if not low <= number <= high:
            _refuse(name, shape, position, value, _outside(datatype))
        exact.append(number)
    return np.array(exact, dtype=np.int64).reshape(shape)


def integers_from_json(name: str, datatype: str, data: JsonArray) -> np.ndarray:
    """The JSON ``data`` of an INT32 / INT64 tensor, read from the body, as exact int64.

    Integer literals within int64 are read exactly by the reader. Otherwise (a literal such as
    ``2.0`` or ``2.5``, or an integer from 2**63 on) the array is read as float64 first, with
    the structure messages of every array; then each integer literal from its digits and each
    other number from its double, and the first that is not an int64 is named as it was sent.
    """
    exact = data.as_int64()
    if exact is not None:
        return _in_range(exact, name, datatype)
    floats = to_array(data, name)  # raises for anything that is not an array of numbers
    values, reason, position = data.integers(floats)
    if reason != INTEGRAL:
        text = data.number_text(position)  # quoted as sent: an int in full, a float as Python
        value = int(text) if text.lstrip("-").isdigit() else float(text)
        what = f"is not an integer (datatype {datatype})" if reason == FRACTIONAL else None
        _refuse(name, floats.shape, position, value, what or _outside(datatype))
    return _in_range(values, name, datatype)


def _limits(datatype: str) -> tuple[int, int]:
    info = np.iinfo(DTYPES[datatype])
    return int(info.min), int(info.max)


def _outside(datatype: str) -> str:
    low, high = _limits(datatype)
    return f"is outside the range of {datatype} [{low}, {high}]"


def _in_range(array: np.ndarray, name: str, datatype: str) -> np.ndarray:
    """An int64 array, checked against the datatype's range (in integers: exact)."""
    if datatype == "INT64":
        return array
    low, high = _limits(datatype)
    outside = (array < low) | (array > high)
    if outside.any():
        position = int(np.argmax(outside.reshape(-1)))
        _refuse(name, array.shape, position, int(array.reshape(-1)[position]), _outside(datatype))
    return array


def _refuse(
    name: str, shape: Sequence[int], position: int, value: int | float, what: str
) -> NoReturn:
    """A DomainError naming entry ``position`` (flat, C order) with the value as sent: an int
    in full, a float as Python writes it (shortest round trip)."""
    index = tuple(int(i) for i in np.unravel_index(position, tuple(shape)))
    raise DomainError(body_loc(name, *index), f"{index_text(name, index)} = {value!r} {what}")


def from_bytes(name: str, datatype: str, shape: Sequence[int], chunk: memoryview) -> np.ndarray:
    """A binary chunk (exactly ``byte_size(shape, datatype)`` bytes): float64 for FP
    datatypes (finite), the integers themselves as int64 for INT ones.

    Always a fresh, aligned, writable C array: the raw view may be misaligned and is read-only.
    """
    if len(chunk) != byte_size(shape, datatype):
        raise MalformedTensorData(
            f"{name}: binary chunk has {len(chunk)} bytes, expected {byte_size(shape, datatype)}"
        )
    raw = np.frombuffer(chunk, dtype=DTYPES[datatype]).reshape(shape)
    if datatype in INTEGER_DATATYPES:
        return np.array(raw, dtype=np.int64, order="C")
    array = np.array(raw, dtype=np.float64, order="C")
    require_finite(array, name)
    return array


def as_parameter(values: np.ndarray) -> list[Any] | float | int:
    """An array parameter (``class_weight``, ``target_lengths``, ...) as a JSON-like value for
    the loss's params model, from the values as decoded: Python ints (exact) for INT tensors,
    floats for FP tensors."""
    return values.tolist()


def output_datatype(predictions_datatype: str) -> Datatype:
    """Outputs are in the predictions' float type: FP32 stays FP32; FP64 and integers give FP64."""
    return "FP32" if predictions_datatype == "FP32" else "FP64"


def encode_output(
    name: str, values: np.ndarray, datatype: str, binary: bool
) -> tuple[dict[str, Any], memoryview | None]:
    """One response tensor: its JSON entry and, when ``binary``, its little-endian bytes."""
    array = np.ascontiguousarray(values, dtype=DTYPES[datatype])
    if first_non_finite(array) is not None:
        raise NonFiniteResult(
            ["body", "outputs", name],
            f"{name} does not fit in {datatype} (its float64 value is finite); "
            "send the predictions as FP64",
        )
    entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if binary:
        raw = array.data.cast("B")  # no copy: the response joins the chunks once
        entry["parameters"] = {"binary_data_size": raw.nbytes}
        return entry, raw
    entry["data"] = array.reshape(-1)
    return entry, None
