"""``read(body)``: one validating pass, then values on demand, arrays as :class:`JsonArray`.

This replaces ``orjson.loads`` + ``np.asarray`` (``service.api.codec.decode_json_object`` and
``to_array``) where that costs too much: a body is scanned once in numba without the GIL
(:mod:`.scanner`), every number converted once, and nothing is built until asked for. A
value's memory is estimated before it is built, and refused (413) once the values would take
more than ``BUILD_FACTOR`` times the body; so one request's peak memory stays within about ten times its body whatever the
body's structure (see ``tests/jsonread/test_reader.py`` and ``bench/json_read.py``).

It accepts what ``decode_json_object`` accepted (orjson's RFC 8259, and what only Python's
``json`` took: ``NaN``, ``Infinity``, ``-Infinity``, numbers beyond the double range, a UTF-8
byte order mark) and gives the same values, numbers included (see :mod:`.build`), with these
deliberate differences:

- a lone surrogate escape (``"\ud800"``) is refused (400): the response encoder cannot write
  it back;
- only UTF-8: UTF-16/32 bodies and UTF-8-encoded surrogates, which Python's ``json`` let
  through, are refused;
- a body with ``NaN`` and more than ~990 levels of nesting (Python's recursion limit) is
  read, up to orjson's 1024 levels like any other;
- values that would take more than ``BUILD_FACTOR`` times the body once built are refused
  with 413 instead of being built (see :meth:`Document.value`);
- the words and positions of a 400's message are the reader's own (same form as orjson's).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

import numpy as np

from service.api.jsonread import keys, objects, scanner, shapes, status, walk
from service.api.jsonread.build import build, decode_string
from service.api.jsonread.scanned import Scanned
from service.api.jsonread.text import locate
from service.validation.errors import MalformedBody, PayloadTooLarge, StructureError

BUILD_FACTOR = 5  # the values of a body may take this many times its bytes once built
BUILD_SLACK = 1 << 20  # plus this much, so small values are never refused
KIND_NAMES = ("object", "array", "string", "number", "true", "false", "null")
_ROOT_KINDS = ("an object", "an array", "a string", "a number", "a boolean", "a boolean", "null")
Path = tuple[str, ...]


def read(
    body: bytes | bytearray | memoryview, *, record_bytes: int = shapes.RECORD_BYTES
) -> Document:
    """Validate ``body`` and return its top-level object, nothing built yet.

    Raises MalformedBody (400) for what ``service.api.codec.decode_json_object`` refuses, and its
    StructureError when the body is valid JSON but not an object. Numeric arrays of at least
    ``record_bytes`` bytes of text have their shape recorded by the scan (others are walked
    when they are read); the tests set it to 0 and to a huge value to check both ways.

    The number tape and the member table are allocated at their worst-case size (half a
    number and a fifth of a member per byte): address space, of which only the pages the scan
    writes become memory.
    """
    if isinstance(body, memoryview):
        body = bytes(body)  # a bytearray is read in place: no copy of a large body
    data = np.frombuffer(body, np.uint8)
    data.flags.writeable = False  # one numba signature for every body
    tape = np.empty(scanner.tape_capacity(len(body)), np.float64)
    members = np.empty((scanner.MEMBER_COLUMNS, scanner.member_capacity(len(body))), np.int64)
    capacity = shapes.record_capacity(len(body), record_bytes)
    records = np.empty((capacity, shapes.RECORD_COLUMNS), np.int64)
    summary = np.zeros(scanner.SUMMARY_SIZE, np.int64)
    scanner.scan(data, tape, members, records, summary, record_bytes)
    code = int(summary[scanner.STATUS])
    if code == status.EMPTY:
        raise MalformedBody("the request body is empty; expected a JSON object")
    if code != status.OK:
        line, column, character = locate(data, summary[scanner.ERROR_AT])
        raise MalformedBody(status.malformed_message(code, line, column, character))
    root_kind = int(summary[scanner.ROOT_KIND])
    if root_kind != scanner.OBJECT:
        raise StructureError(
            ["body"], f"the request body must be a JSON object, got {_ROOT_KINDS[root_kind]}"
        )
    count = int(summary[scanner.MEMBER_COUNT])
    stdlib = bool(summary[scanner.FLAGS] & scanner.STDLIB_SEMANTICS)
    records = records[: summary[scanner.RECORD_COUNT]]
    return Document(body, data, tape, members[:, :count], records, stdlib)


class Document(Scanned):
    """The top-level object of a validated body.

    ``tape``: the double of every number token, in document order; ``members``: for each
    top-level member, its column of :data:`.scanner.KEY_START`, ``VALUE_END``, ``TAPE_START``;
    ``records``: the shapes of large numeric arrays (:mod:`.shapes`). Duplicate
    keys behave as in a dict: first position, last value.
    """

    def __init__(
        self, body: bytes | bytearray, data, tape, members, records, stdlib_semantics: bool
    ) -> None:
        super().__init__(body, data, tape, members, records, stdlib_semantics)
        self._index: dict[str, int] | None = None  # key -> winning member, once keys() ran
        #: Bytes of Python objects the values may take, all values together: the body's size
        #: times BUILD_FACTOR (a request whose params hold a long list, class weights for 100k
        #: classes say, has predictions at least as long), plus BUILD_SLACK.
        self.budget = BUILD_FACTOR * len(body) + BUILD_SLACK
        self.built = 0

    def __contains__(self, key: str) -> bool:
        return self._member(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> list[str]:
        """Top-level keys, in order of first occurrence, each once.

        Raises PayloadTooLarge when the list would take more than the body's budget (a body of
        a million short keys); :meth:`unknown_keys` answers a closed-key check in bounded
        memory.
        """
        if self._index is None:
            starts = self.members[scanner.KEY_START]
            first, last = keys.distinct_keys(self.data, starts)
            names = self._key_texts(starts, first, "the body", len(self.body))
            self._index = dict(zip(names, last.tolist(), strict=True))
        return list(self._index)

    def kind(self, key: str) -> str:
        """``object``, ``array``, ``string``, ``number``, ``true``, ``false`` or ``null``."""
        start, _, _ = self._span(key)
        return KIND_NAMES[scanner.kind_of(self.data[start])]

    def object_keys(self, key: str) -> list[str]:
        """Keys of the object under ``key``, each once, without building its values."""
        starts = self._object_key_starts(key)
        first, _ = keys.distinct_keys(self.data, starts)
        start, end, _ = self._span(key)
        return self._key_texts(starts, first, key, end - start)

    def unknown_keys(
        self, allowed: Collection[str], *, within: str | None = None, limit: int = 8
    ) -> tuple[list[str], int]:
        """``(the first `limit` keys not in allowed, how many distinct keys are not)``, for
        the top-level object or the object under ``within``; memory does not grow with the
        number of keys beyond a few bytes each."""
        if within is None:
            starts = self.members[scanner.KEY_START]
        else:
            starts = self._object_key_starts(within)
        first, _ = keys.distinct_keys(self.data, starts)
        encoded = [name.encode() for name in allowed]
        offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int64)
        joined = np.frombuffer(b"".join(encoded) or b"\0", np.uint8)
        unknown = keys.unknown_keys(self.data, starts, first, joined, offsets)
        chosen = starts[first[unknown][:limit]]
        ends = keys.keys_end(self.data, chosen)
        body = self.body
        pairs = zip(chosen.tolist(), ends.tolist(), strict=True)
        return [decode_string(body, start, end) for start, end in pairs], int(unknown.sum())

    def value(self, key: str, arrays: Iterable[Path] = frozenset()) -> Any:
        """The value under ``key`` as ``decode_json_object(body)[key]`` gave it, except that
        every array at one of the relative ``arrays`` paths is a :class:`JsonArray`.

        A path is a tuple of object keys, ``"*"`` standing for any key or index: ``()`` is the
        value itself, ``("*", "data")`` the ``data`` of every entry. Raises KeyError when the
        key is absent, PayloadTooLarge (naming ``key``) when the values built so far and this
        one would take more memory than ``BUILD_FACTOR`` times the body plus ``BUILD_SLACK``.
        """
        start, end, tape = self._span(key)
        sizes, segments, path_bytes = encode_paths(arrays)
        collapse = not self.stdlib_semantics
        no_rows = np.empty((0, 4), np.int64)
        count, cost = walk.walk(
            self.data, start, end, tape, sizes, segments, path_bytes, collapse, no_rows
        )
        if self.built + cost > self.budget:
            raise PayloadTooLarge(
                f"{key}: building this value would take about {max(cost >> 20, 1)} MiB, past "
                f"{BUILD_FACTOR} times the body's {len(self.body)} bytes; it holds too many small "
                "entries (arrays, objects, strings or numbers) outside the tensor fields"
            )
        self.built += cost
        tokens = np.empty((count, 4), np.int64)
        walk.walk(self.data, start, end, tape, sizes, segments, path_bytes, collapse, tokens)
        return build(self, tokens, count)

    def _member(self, key: str) -> int | None:
        if self._index is not None:
            return self._index.get(key)
        wanted = np.frombuffer(key.encode(), np.uint8)
        found = keys.find_key(self.data, self.members[scanner.KEY_START], wanted)
        return None if found < 0 else int(found)

    def _span(self, key: str) -> tuple[int, int, int]:
        """``(start, end, tape index)`` of the value under ``key``."""
        member = self._member(key)
        if member is None:
            raise KeyError(key)
        key_start, end, tape = self.members[:, member].tolist()
        return walk.value_start(self.data, key_start), end, tape

    def _object_key_starts(self, key: str) -> np.ndarray:
        start, _, _ = self._span(key)
        if self.data[start] != ord("{"):
            raise TypeError(f"{key} holds {self.kind(key)}, not an object")
        return objects.key_starts(self.data, start)

    def _key_texts(self, starts, first, owner: str, text_bytes: int) -> list[str]:
        """Python strings of the keys ``starts[first]``, refused past the memory budget."""
        chosen = starts[first]
        ends = keys.keys_end(self.data, chosen)
        cost = int(keys.key_list_cost(self.data, chosen))
        if cost > BUILD_FACTOR * text_bytes + BUILD_SLACK:
            raise PayloadTooLarge(
                f"{owner}: its {first.size} distinct keys would take about {cost >> 20} MiB as "
                f"Python strings, more than {BUILD_FACTOR} times its {text_bytes} bytes of JSON"
            )
        body = self.body
        pairs = zip(chosen.tolist(), ends.tolist(), strict=True)
        return [decode_string(body, start, end) for start, end in pairs]


def encode_paths(paths: Iterable[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sizes, segments, path bytes)`` for :func:`.walk.walk` (see there)."""
    paths = list(dict.fromkeys(tuple(path) for path in paths))
    if len(paths) > 62:
        raise ValueError("at most 62 array paths")
    longest = max((len(path) for path in paths), default=0)
    sizes = np.array([len(path) for path in paths], np.int64)
    segments = np.full((len(paths), max(longest, 1), 2), -1, np.int64)
    pieces: list[bytes] = []
    offset = 0
    for number, path in enumerate(paths):
        for depth, segment in enumerate(path):
            if segment == "*":
                continue
            encoded = segment.encode()
            segments[number, depth] = (offset, offset + len(encoded))
            pieces.append(encoded)
            offset += len(encoded)
    path_bytes = np.frombuffer(b"".join(pieces) or b"\0", np.uint8).copy()
    return sizes, segments, path_bytes
