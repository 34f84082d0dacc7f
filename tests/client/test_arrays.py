"""The client's readers: each format, memory-mapped ``.npy``, keys and columns, and the errors
(one line each, naming the file)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from loss_client.arrays import InputError, parse_source, read_array

RNG = np.random.default_rng(14)
SCORES = RNG.normal(size=50)
LABELS = RNG.integers(0, 2, size=50)
MATRIX = RNG.normal(size=(50, 3))


def read_error(source: str) -> str:
    with pytest.raises(InputError) as raised:
        read_array(source)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_npy_is_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "scores.npy"
    np.save(path, MATRIX)
    array = read_array(str(path))
    assert isinstance(array, np.memmap)
    assert str(array.filename) == str(path)
    np.testing.assert_array_equal(array, MATRIX)
    np.testing.assert_array_equal(array[10:20], MATRIX[10:20])


def test_npy_takes_no_key(tmp_path: Path) -> None:
    assert "takes no key" in read_error(f"{tmp_path}/a.npy:x")


def test_npz_by_key_or_alone(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, scores=SCORES, labels=LABELS)
    np.testing.assert_array_equal(read_array(f"{path}:scores"), SCORES)
    np.testing.assert_array_equal(read_array(f"{path}:labels"), LABELS)
    message = read_error(f"{path}:logits")
    assert message == f"{path}: no key 'logits'; it has 'scores', 'labels'"
    assert "say which key (FILE:KEY)" in read_error(str(path))
    alone = tmp_path / "alone.npz"
    np.savez(alone, only=SCORES)
    np.testing.assert_array_equal(read_array(str(alone)), SCORES)


def test_a_key_may_hold_colons(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, **{"head:0": SCORES})
    np.testing.assert_array_equal(read_array(f"{path}:head:0"), SCORES)
    assert parse_source("dir.csv/x.npz:a.csv:b").key == "a.csv:b"
    assert str(parse_source("dir.csv/x.npz:a.csv:b").path) == "dir.csv/x.npz"


def test_csv_columns_by_header(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    lines = ["score,label,site"] + [
        f"{float(score)!r},{label},{'north' if i % 3 else 'south'}"
        for i, (score, label) in enumerate(zip(SCORES, LABELS, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")
    scores = read_array(f"{path}:score")
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, SCORES)  # repr round-trips float64 exactly
    labels = read_array(f"{path}:label")
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, LABELS)
    sites = read_array(f"{path}:site")
    assert sites.dtype.kind == "U"
    assert list(sites[:3]) == ["south", "north", "north"]
    assert read_error(f"{path}:weight") == (
        f"{path}: no column 'weight'; it has 'score', 'label', 'site'"
    )
    assert "say which column" in read_error(str(path))


def test_csv_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty file" in read_error(f"{empty}:a")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    assert read_error(f"{ragged}:a") == f"{ragged}, line 3: 1 fields, the header has 2"
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("a\n1.5\n\n2\n")  # a blank line is skipped
    np.testing.assert_array_equal(read_array(f"{gaps}:a"), [1.5, 2.0])


def test_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    table = pa.table(
        {
            "score": SCORES,
            "label": LABELS,
            "site": [f"s{i % 4}" for i in range(50)],
            "row": [list(row) for row in MATRIX],
        }
    )
    pq.write_table(table, path)
    np.testing.assert_array_equal(read_array(f"{path}:score"), SCORES)
    np.testing.assert_array_equal(read_array(f"{path}:label"), LABELS)
    assert list(read_array(f"{path}:site")[:5]) == ["s0", "s1", "s2", "s3", "s0"]
    np.testing.assert_array_equal(read_array(f"{path}:row"), MATRIX)  # a list column: (N, 3)
    assert read_error(f"{path}:nope") == (
        f"{path}: no column 'nope'; it has 'score', 'label', 'site', 'row'"
    )


def test_parquet_nulls_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"score": [0.5, None, 0.25]}), path)
    assert "1 null value(s)" in read_error(f"{path}:score")


def test_parquet_without_pyarrow_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "table.parquet"
    pq.write_table(pa.table({"score": SCORES}), path)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails as if absent
    assert "reading Parquet needs pyarrow" in read_error(f"{path}:score")
    assert "loss-service-client[parquet]" in read_error(f"{path}:score")


def test_unknown_and_missing_files(tmp_path: Path) -> None:
    assert "expected a file ending in one of .npy, .npz, .csv, .parquet" in read_error("a.txt")
    assert read_error(f"{tmp_path}/none.npy") == f"{tmp_path}/none.npy: no such file"
    assert "nothing after the colon" in read_error(f"{tmp_path}/a.npz:")
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not numpy")
    assert read_error(str(broken)).startswith(f"{broken}: cannot read it: ")


def test_object_arrays_are_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert read_error(str(path)).startswith(f"{path}: cannot read it: ")
