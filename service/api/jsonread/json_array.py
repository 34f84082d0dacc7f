"""A JSON array of the body, read as float64 (or int64) without a Python object per element.

Its numbers were converted by the scan already: when it converts, :meth:`JsonArray.to_array`
is a reshaped slice of the document's number tape. What remains is its shape: a large numeric
array has it recorded by the scan (:mod:`.shapes`), found here by its end position; any other
array is walked once (:func:`.arrays.analyze`, in numba) to learn its lengths along first
entries (``size``), whether it converts and its shape, or the first problem
:func:`service.api.codec.to_array` would report.
"""

from __future__ import annotations

import math

import numpy as np

from service.api.jsonread import arrays, shapes
from service.api.jsonread.scanned import Scanned
from service.validation.errors import StructureError, body_loc, index_text
from service.validation.finite import MAX_DIMENSIONS, require_finite

KIND_NAMES = {
    arrays.KIND_NUMBER: "a number",
    arrays.KIND_STRING: "a string",
    arrays.KIND_NULL: "null",
    arrays.KIND_BOOLEAN: "a boolean",
    arrays.KIND_OBJECT: "an object",
    arrays.KIND_ARRAY: "an array",
}


def _recorded_shape(records: np.ndarray, end: int) -> tuple[int, ...] | None:
    """The shape the scan recorded for the array ending at ``end``, if it did."""
    row = int(np.searchsorted(records[:, shapes.END], end))
    if row == len(records) or records[row, shapes.END] != end:
        return None
    dimensions = int(records[row, shapes.DIMENSIONS])
    return tuple(records[row, shapes.SHAPE : shapes.SHAPE + dimensions].tolist())


class JsonArray:
    """An array of the body at ``[start, end)``, whose first number is ``tape[tape_start]``.

    ``size`` is ``service.api.codec.nested_size`` of the array as a Python list: the product of
    the lengths along first entries (a ragged array is refused later, by :meth:`to_array`).
    """

    __slots__ = ("_document", "_problem", "_shape", "end", "size", "start", "tape_start")

    def __init__(self, document: Scanned, start: int, end: int, tape_start: int) -> None:
        self._document = document
        self.start, self.end, self.tape_start = start, end, tape_start
        self._problem: tuple[int, tuple[int, ...], int, int] | None = None
        self._shape = _recorded_shape(document.records, end)
        if self._shape is not None:  # a large numeric array: the scan saw its shape
            self.size = math.prod(self._shape)
            return
        nesting = arrays.nesting_bound(start, end)
        shape = np.empty(nesting, np.int64)
        chain = np.empty(nesting, np.int64)
        path = np.empty(arrays.MAX_DIMENSIONS + 1, np.int64)
        result = np.zeros(arrays.RESULT_SIZE, np.int64)
        arrays.analyze(document.data, start, shape, chain, path, result)
        self.size = math.prod(chain[: result[arrays.CHAIN_DEPTH]].tolist())
        if result[arrays.CONVERTS]:
            self._shape = tuple(shape[: result[arrays.DIMENSIONS]].tolist())
        elif result[arrays.PROBLEM] != arrays.NO_PROBLEM:
            where = tuple(path[: result[arrays.PROBLEM_DEPTH]].tolist())
            self._problem = (
                int(result[arrays.PROBLEM]),
                where,
                int(result[arrays.DETAIL_A]),
                int(result[arrays.DETAIL_B]),
            )

    def __repr__(self) -> str:
        return f"JsonArray(size={self.size}, shape={self._shape}, bytes={self.end - self.start})"

    def to_array(self, field: str) -> np.ndarray:
        """What ``service.api.codec.to_array(list, field)`` returns or raises for this array.

        The result is a float64, C-contiguous view of the document's number tape (no copy):
        it keeps the tape alive, and two calls return the same memory.
        """
        if self._shape is None:
            raise self._structure_error(field)
        count = math.prod(self._shape)
        values = self._document.tape[self.tape_start : self.tape_start + count]
        values = values.reshape(self._shape)
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in the finiteness sum
            require_finite(values, field)
        return values

    def as_int64(self) -> np.ndarray | None:
        """The array as exact int64 (same shape) when it converts and every token is an
        integer literal within int64, else None."""
        if self._shape is None:
            return None
        values = np.empty(math.prod(self._shape), np.int64)
        if not arrays.read_integers(self._document.data, self.start, self.end, values):
            return None
        return values.reshape(self._shape)

    def integers(self, floats: np.ndarray) -> tuple[np.ndarray, int, int]:
        """``(exact int64 values, reason, index)``: every number as an int64 (integer
        literals from their digits, others from ``floats``, this array's float64 values), or
        why the number at ``index`` is not one (:data:`.arrays.FRACTIONAL`, ``BEYOND_INT64``)."""
        out = np.empty(floats.size, np.int64)
        reason, index = arrays.exact_integers(
            self._document.data, self.start, self.end, floats.reshape(-1), out
        )
        return out.reshape(floats.shape), int(reason), int(index)

    def number_text(self, index: int) -> str:
        """The text of the ``index``-th number (flat, C order) as the body sent it, for
        messages that quote a value exactly."""
        first, last = arrays.number_span(self._document.data, self.start, self.end, index)
        return bytes(self._document.body[first:last]).decode("ascii", "replace")

    def _structure_error(self, field: str) -> StructureError:
        """The error ``codec._explain_bad_array`` builds, word for word."""
        if self._problem is None:
            return StructureError(
                body_loc(field),
                f"{field} is not a rectangular array of at most {MAX_DIMENSIONS} dimensions",
            )
        code, index, first, second = self._problem
        if code == arrays.TOO_DEEP:
            message = f"is nested too deeply: arrays may have at most {MAX_DIMENSIONS} dimensions"
        elif code == arrays.MIXED:
            message = (
                f"is {KIND_NAMES[first]} but the first entry beside it is "
                f"{KIND_NAMES[second]}: ragged arrays are not allowed"
            )
        elif code == arrays.WIDTH:
            message = (
                f"has {first} entries but the entry before it has {second}: "
                "ragged arrays are not allowed"
            )
        else:
            message = f"is {KIND_NAMES[first]}; expected a number"
        return StructureError(body_loc(field, *index), f"{index_text(field, index)} {message}")
