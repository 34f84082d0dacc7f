"""The data set as named arrays, checked before anything is sent, and cut into shards.

Shard ``i`` holds samples ``[i * shard_size, min((i + 1) * shard_size, N))`` of every array
and carries its first sample's global index as ``offset``: the shards cover every sample
exactly once, in order. Bodies are built one at a time from the arrays (slices of memory-mapped
files stay on disk until then), and a non-finite value is refused there, naming the file and
the index, since JSON cannot carry NaN or infinities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loss_client.arrays import InputError, read_array

#: The optional arrays, besides predictions and targets, in the order they are checked.
OPTIONAL = ("sample_weight", "groups")


@dataclass(frozen=True)
class Field:
    """One array of the request: its name in the body, the array, and where it came from."""

    name: str
    array: np.ndarray
    source: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.source is None else f"{self.name} ({self.source})"

    @property
    def samples(self) -> int:
        return int(self.array.shape[0])


def as_field(name: str, value: Any) -> Field:
    """An array given as an array, a nested list, or a file source (``"preds.npy"``,
    ``"data.npz:key"``, ``"table.csv:column"``, ``"table.parquet:column"``)."""
    if isinstance(value, str):
        return Field(name, read_array(value), value)
    if isinstance(value, np.ndarray):  # memory maps stay memory maps
        return Field(name, value)
    try:
        return Field(name, np.asarray(value))
    except ValueError as error:  # ragged lists
        raise InputError(f"{name}: not an array ({' '.join(str(error).split())})") from None


def check(fields: Sequence[Field]) -> int:
    """The number of samples, after checking every array: axis 0 is the sample axis, and all
    arrays have as many samples as ``predictions`` (the first)."""
    for item in fields:
        if item.array.ndim == 0:
            raise InputError(f"{item.label} is a scalar; axis 0 must be the sample axis")
        kind = item.array.dtype.kind
        if item.name == "groups":
            if item.array.ndim != 1:
                raise InputError(
                    f"{item.label} has shape {item.array.shape}; groups has one label per sample"
                )
            if kind not in "biuUSf":
                raise InputError(f"{item.label} holds {item.array.dtype}: integers or strings")
        elif kind not in "biuf":
            raise InputError(f"{item.label} holds {item.array.dtype}, not numbers")
    first = fields[0]
    for other in fields[1:]:
        if other.samples != first.samples:
            raise InputError(
                f"{first.name} has {first.samples} samples but {other.name} has {other.samples}"
            )
    if first.samples == 0:
        raise InputError(f"{first.label} has no samples")
    return first.samples


def shard_bounds(samples: int, shard_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of every shard, in order, covering ``range(samples)`` once."""
    if shard_size < 1:
        raise ValueError(f"the shard size must be at least 1, not {shard_size}")
    return [(start, min(start + shard_size, samples)) for start in range(0, samples, shard_size)]


def shard_body(fields: Sequence[Field], start: int, stop: int, definition: dict[str, Any]) -> bytes:
    """The ``/v1/evaluate`` body of samples ``[start, stop)``: the arrays' slices as nested
    lists, the definition (terms, metrics, ``top_k``), ``"state": true``, ``"offset"``."""
    body: dict[str, Any] = {}
    for item in fields:
        body[item.name] = _values(item, start, stop)
    body.update(definition)
    body["state"] = True
    body["include"] = ["cost"]
    body["offset"] = start
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def _values(item: Field, start: int, stop: int) -> list:
    chunk = np.asarray(item.array[start:stop])
    kind = chunk.dtype.kind
    if kind == "b":
        chunk = chunk.astype(np.int8)
    elif kind == "S":
        chunk = chunk.astype(str)
    elif kind == "f":
        finite = np.isfinite(chunk)
        if not finite.all():
            where = tuple(int(i) for i in np.argwhere(~finite)[0])
            value = chunk[where]
            index = (start + where[0], *where[1:])
            shown = index[0] if len(index) == 1 else index
            raise InputError(
                f"{item.label} has a non-finite value ({value}) at index {shown}; "
                "JSON cannot carry it and the service scores finite numbers only"
            )
        if item.name == "groups":
            if not (chunk == np.round(chunk)).all():
                raise InputError(f"{item.label} holds fractions: labels are integers or strings")
            chunk = chunk.astype(np.int64)
    return chunk.tolist()
