"""Arrays from files: ``.npy`` (memory-mapped), ``.npz:key``, ``.csv:column`` (a header row
names the columns) and ``.parquet:column`` (with pyarrow).

A source is written ``path`` or ``path:key``; the key is whatever follows the first known
extension and a colon, so a key may itself hold colons. A ``.npy`` file is memory-mapped: only
the shards being sent are read, so a data set larger than memory streams through.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXTENSIONS = ("npy", "npz", "csv", "parquet")
_SOURCE = re.compile(r"^(?P<path>.*?\.(?:" + "|".join(EXTENSIONS) + r"))(?::(?P<key>.*))?$")


class InputError(ValueError):
    """A file or array the client cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Source:
    path: Path
    key: str | None

    @property
    def kind(self) -> str:
        return self.path.suffix.lstrip(".").lower()

    def __str__(self) -> str:
        return str(self.path) if self.key is None else f"{self.path}:{self.key}"


def parse_source(text: str) -> Source:
    """``preds.npy``, ``data.npz:logits``, ``table.csv:label``, ``table.parquet:score``."""
    match = _SOURCE.match(text)
    if match is None:
        known = ", ".join(f".{extension}" for extension in EXTENSIONS)
        raise InputError(f"{text!r}: expected a file ending in one of {known} (or FILE:KEY)")
    key = match["key"]
    if key == "":
        raise InputError(f"{text!r}: nothing after the colon (FILE:KEY names a key or column)")
    if key is not None and match["path"].lower().endswith(".npy"):
        raise InputError(f"{text!r}: a .npy file holds one array; it takes no key")
    return Source(Path(match["path"]), key)


def read_array(text: str) -> np.ndarray:
    """The array a source names; a one-line :class:`InputError` if it cannot be read."""
    source = parse_source(text)
    if not source.path.is_file():
        raise InputError(f"{source.path}: no such file")
    reader = {
        "npy": _read_npy,
        "npz": _read_npz,
        "csv": _read_csv,
        "parquet": _read_parquet,
    }[source.kind]
    try:
        return reader(source)
    except InputError:
        raise
    except (OSError, ValueError) as error:
        raise InputError(f"{source}: cannot read it: {_one_line(error)}") from None


def _read_npy(source: Source) -> np.ndarray:
    # Memory-mapped: pages are read as shards are sent, and the system may drop them again.
    # Arrays of Python objects cannot be mapped (nor loaded without pickle, which runs code).
    return np.load(source.path, mmap_mode="r", allow_pickle=False)


def _read_npz(source: Source) -> np.ndarray:
    # Members of a zip archive cannot be memory-mapped: the one asked for is read whole.
    with np.load(source.path, allow_pickle=False) as archive:
        keys = list(archive.files)
        key = _choose(source, keys, "key")
        return archive[key]


def _read_csv(source: Source) -> np.ndarray:
    with source.path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{source.path}: empty file (a header row names the columns)")
        header = [name.strip() for name in header]
        column = header.index(_choose(source, header, "column"))
        cells = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue  # a blank line
            if len(row) != len(header):
                raise InputError(
                    f"{source.path}, line {line}: {len(row)} fields, the header has {len(header)}"
                )
            cells.append(row[column].strip())
    return _typed(cells)


def _typed(cells: list[str]) -> np.ndarray:
    """Integers if every cell is one, else floats if every cell is a number, else strings."""
    for dtype in (np.int64, np.float64):
        try:
            return np.array([dtype(cell) if cell else _empty(dtype) for cell in cells], dtype)
        except (ValueError, OverflowError):
            continue
    return np.array(cells, dtype=str)


def _empty(dtype: type) -> object:
    if dtype is np.int64:
        raise ValueError("an empty cell is not an integer")
    return np.nan  # an empty numeric cell is missing: refused before sending, with its index


def _read_parquet(source: Source) -> np.ndarray:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise InputError(
            f"{source}: reading Parquet needs pyarrow "
            "(pip install 'loss-service-client[parquet]' or pip install pyarrow)"
        ) from None
    schema = parquet.read_schema(source.path)
    column = _choose(source, list(schema.names), "column")
    values = parquet.read_table(source.path, columns=[column]).column(column)
    if values.null_count:
        raise InputError(f"{source}: {values.null_count} null value(s); nulls cannot be scored")
    array = values.to_numpy()
    if array.dtype == object:
        # Strings, or a list column (a row = a sample of several entries): through Python
        # lists to a string array or an (N, ...) array of numbers.
        array = np.array(values.to_pylist())
    return array


def _choose(source: Source, names: list[str], what: str) -> str:
    if source.key is None:
        if len(names) == 1:
            return names[0]
        raise InputError(
            f"{source.path}: say which {what} (FILE:{what.upper()}); it has {_listing(names)}"
        )
    if source.key not in names:
        raise InputError(f"{source.path}: no {what} {source.key!r}; it has {_listing(names)}")
    return source.key


def _listing(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(repr(name) for name in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
