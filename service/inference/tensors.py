"""Tensors of the Open Inference Protocol: JSON data or little-endian bytes in, float64 out,
and back again.

A request tensor is ``{"name", "shape", "datatype", "data"}`` with ``data`` flat (row-major) or
nested; with Triton's binary tensor extension, ``parameters.binary_data_size`` replaces
``data`` and the bytes follow the JSON header. Datatypes FP32, FP64, INT32 and INT64 are
accepted for every input; every input is computed in float64 (API.md: "All arithmetic is
float64"). Outputs are FP64, or FP32 when the predictions were FP32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from service.codec import require_finite, to_array
from service.domain import fail_at
from service.errors import NonFiniteResult, StructureError
from service.finite import first_non_finite
from service.inference.errors import MalformedTensorData

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
    """JSON ``data`` (flat row-major, or nested in the declared shape) as float64."""
    if not isinstance(data, list | np.ndarray):  # an array from the decode helper
        raise StructureError(
            inputs_loc(name, "data"),
            f"{name}: data must be an array of numbers (flat or nested), got {type(data).__name__}",
        )
    array = to_array(data, name)  # rectangular, numbers only, finite, float64
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
    array = array.reshape(shape)
    if datatype in INTEGER_DATATYPES:
        _require_integers(array, name, datatype)
    return array


def _require_integers(array: np.ndarray, name: str, datatype: str) -> None:
    fail_at(array, name, np.trunc(array) != array, f"is not an integer (datatype {datatype})")
    info = np.iinfo(DTYPES[datatype])
    fail_at(
        array,
        name,
        (array < info.min) | (array > info.max),
        f"is outside the range of {datatype} [{info.min}, {info.max}]",
    )


def from_bytes(name: str, datatype: str, shape: Sequence[int], chunk: memoryview) -> np.ndarray:
    """A binary chunk (exactly ``byte_size(shape, datatype)`` bytes) as float64.

    Always a fresh, aligned, writable C array: the raw view may be misaligned and is read-only.
    """
    if len(chunk) != byte_size(shape, datatype):
        raise MalformedTensorData(
            f"{name}: binary chunk has {len(chunk)} bytes, expected {byte_size(shape, datatype)}"
        )
    raw = np.frombuffer(chunk, dtype=DTYPES[datatype]).reshape(shape)
    array = np.array(raw, dtype=np.float64, order="C")
    if datatype not in INTEGER_DATATYPES:
        require_finite(array, name)
    return array


def as_parameter(array: np.ndarray, datatype: str) -> list[Any] | float | int:
    """An array parameter (``class_weight``, ``target_lengths``, ...) as a JSON-like value for
    the loss's params model: integers for INT tensors, floats for FP tensors."""
    values = array.astype(np.int64) if datatype in INTEGER_DATATYPES else array
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
        raw = memoryview(array).cast("B")  # no copy: the response joins the chunks once
        entry["parameters"] = {"binary_data_size": raw.nbytes}
        return entry, raw
    entry["data"] = array.reshape(-1)
    return entry, None
