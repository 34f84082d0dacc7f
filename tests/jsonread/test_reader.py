"""service.api.jsonread against independent references: float(), orjson, and today's codec.

- Numbers: every token's double is compared bit for bit with ``float(text)`` (round-trip
  printers: the printed double itself), on a million random doubles and on hard cases.
- Documents and arrays: Hypothesis bodies read by the previous decoder
  (``tests/reference/jsonread.py``) + ``codec.to_array`` and by the reader must give the same
  values, or the same error (class, ``loc``, message); both paths of array shapes (recorded by
  the scan, or walked) are checked.
- Memory: values too large to build are refused (the peak RSS of pathological bodies, in a
  subprocess, is checked in tests/system/test_jsonread_memory.py).
- The GIL: another thread runs while a large body is scanned.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.api import codec
from service.api.jsonread import JsonArray, read, warm
from service.validation.errors import MalformedBody, PayloadTooLarge, StructureError
from tests.reference import jsonread as reference
from tests.reference.jsonread import reading, reference_reading, refused_on_purpose
from tests.strategies import jsonread as draws
from tests.strategies.jsonread_numbers import HARD_NUMBERS, halfway_texts

RECORDED_AND_WALKED = pytest.mark.parametrize("record_bytes", [0, 10**12])
#: The document tests draw 7.5 times the profile's examples: 300 under the default and CI
#: profiles (40), 75 under make test-fast's (10).
MANY_EXAMPLES = settings(max_examples=settings.default.max_examples * 15 // 2)


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    warm()


def tape_of(texts: list[str]) -> np.ndarray:
    """The doubles the reader makes of number texts (read as one array)."""
    document = read(('{"a": [' + ",".join(texts) + "]}").encode())
    return document.tape[: len(texts)]


def reference_bits(texts: list[str]) -> np.ndarray:
    """``float(text)``; an integer literal is the double nearest the integer (so "-0" is 0)."""
    values = [0.0 if text == "-0" else float(text) for text in texts]
    return np.array(values, np.float64).view(np.uint64)


def assert_same_doubles(texts: list[str]) -> None:
    got = tape_of(texts).view(np.uint64)
    expected = reference_bits(texts)
    wrong = np.flatnonzero(got != expected)
    assert wrong.size == 0, [(texts[i], got[i], expected[i]) for i in wrong[:5]]


# --- numbers -------------------------------------------------------------------------------


def test_hard_numbers_are_correctly_rounded() -> None:
    assert_same_doubles(HARD_NUMBERS)


@pytest.mark.slow  # a million doubles, twice
@pytest.mark.parametrize("dumps", [orjson.dumps, lambda values: json.dumps(values).encode()])
def test_a_million_random_doubles_read_back_exactly(dumps) -> None:
    """orjson and repr print the shortest text that reads back as the same double."""
    rng = np.random.default_rng(2021)
    bits = rng.integers(0, 2**64, size=500_000, dtype=np.uint64, endpoint=False)
    doubles = bits.view(np.float64)
    doubles = np.concatenate([doubles[np.isfinite(doubles)], rng.standard_normal(500_000)])
    document = read(b'{"a":' + dumps(doubles.tolist()) + b"}")
    got = document.value("a", arrays={()}).to_array("a")
    assert np.array_equal(got.view(np.uint64), doubles.view(np.uint64))


@pytest.mark.slow  # 150,000 numbers built in Python
def test_random_digit_strings_with_random_exponents() -> None:
    rng = np.random.default_rng(5)
    texts = []
    for _ in range(150_000):
        digits = "".join(map(str, rng.integers(0, 10, size=int(rng.integers(1, 40)))))
        digits = digits.lstrip("0") or "0"
        point = int(rng.integers(0, len(digits) + 1))
        mantissa = digits if point in (0, len(digits)) else digits[:point] + "." + digits[point:]
        texts.append(f"{mantissa}e{int(rng.integers(-360, 330))}")
    assert_same_doubles(texts)


def test_long_mantissas_near_midpoints() -> None:
    assert_same_doubles(halfway_texts(1500, seed=11))


def test_the_exact_comparison_alone_matches_float() -> None:
    """The exact comparison runs only when the fast paths cannot decide; here on its own,
    started from the answer and from each of its neighbours, on long mantissas near
    midpoints, subnormals, near overflow and long integers."""
    from service.api.jsonread.decimal_fallback import decimal_bits

    rng = np.random.default_rng(17)
    texts = halfway_texts(60, seed=3)
    for _ in range(3000):
        digits = str(int(rng.integers(1, 10))) + "." + str(int(rng.integers(0, 10**18)))
        texts.append(f"{digits}e-{int(rng.integers(318, 325))}")
        texts.append(f"{digits}e{int(rng.integers(300, 309))}")
        texts.append(str(int(rng.integers(1, 2**62)) * 10 ** int(rng.integers(0, 40))))
    texts += ["1.7976931348623158e308", "1.7976931348623159e308", "2.4703282292062328e-324"]
    for text in texts:
        data = np.frombuffer(text.encode(), np.uint8)
        answer = int(np.array([float(text)]).view(np.uint64)[0])
        neighbours = [answer + step for step in (-1, 0, 1)]
        for candidate in [bits for bits in neighbours if 0 <= bits <= 0x7FF0000000000000]:
            got = decimal_bits(data, 0, data.size, np.uint64(candidate))
            assert got == answer, (text, candidate)


def test_integers_past_two_to_the_53_63_and_64() -> None:
    texts = []
    for base in (2**53, 2**63, 2**64, 10**19, 10**25):
        for offset in range(-3, 4):
            texts += [str(base + offset), str(-(base + offset))]
    texts += [str(2**53 + 1) + "0" * k for k in range(5)]
    assert_same_doubles(texts)


@given(st.lists(draws.NUMBERS.filter(lambda text: text not in ("NaN",)), min_size=1, max_size=50))
def test_every_number_spelling(texts: list[str]) -> None:
    assert_same_doubles(texts)


# --- documents and arrays against today's decoder -------------------------------------------


@RECORDED_AND_WALKED
@MANY_EXAMPLES
@given(body=draws.bodies())
def test_documents_read_as_today(body: bytes, record_bytes: int) -> None:
    if refused_on_purpose(body):
        assert reading(body, record_bytes=record_bytes)[0] == "malformed"
        return
    assert reading(body, record_bytes=record_bytes) == reference_reading(body)


@RECORDED_AND_WALKED
@MANY_EXAMPLES
@given(value=draws.numeric_arrays() | draws.deep_arrays(), spaces=draws.SPACES)
def test_arrays_convert_or_fail_as_today(value: str, spaces: str, record_bytes: int) -> None:
    body = ('{"predictions":' + spaces + value + "}").encode()
    assert reading(body, record_bytes=record_bytes) == reference_reading(body)


def test_the_first_problem_is_found_in_the_same_order() -> None:
    """A few arrays with several problems: which one is named depends on the search order."""
    values = [
        [[1, "a"], [1, 2, 3]],  # the width of entry 1 is seen before entry 0's string
        [[1, [2]], 5],  # a mixed level before anything inside
        [[[1], [1, 2]], [[True]]],
        [[1, 2], [3, None], [4]],
        [[[0]] * 2, [[0], [1, 2]]],
        [[1], [[2]]],  # ragged in depth only: no problem found, the generic message
        [[[]], [[], []]],
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    ]
    for value in values:
        body = json.dumps({"predictions": value}).encode()
        assert reading(body) == reference_reading(body), value


def test_malformed_bodies_are_refused_with_where_and_what() -> None:
    cases = {
        b'{"a":[1,]}': "trailing comma is not allowed: line 1 column 8 (char 7)",
        b'{"a":1,}': "trailing comma is not allowed: line 1 column 7 (char 6)",
        b'{"a":01}': "number with leading zero is not allowed: line 1 column 6 (char 5)",
        b'{"a" 1}': "unexpected character, expected ':' after key: line 1 column 6 (char 5)",
        b'{"\xc3\xa9":x}': "unexpected character, expected a JSON value: line 1 column 6 (char 5)",
        b'{"a":1}\n\n x': "unexpected content after document: line 3 column 2 (char 10)",
        b'{"a":"\xed\xa0\x80"}': "invalid UTF-8 byte sequence: line 1 column 7 (char 6)",
        b'{"a":"\\ud800x"}': "no low surrogate in string: line 1 column 7 (char 6)",
        b'{"a":tru}': "invalid literal, expected 'true': line 1 column 6 (char 5)",
        b"{": "unexpected end of data: line 1 column 2 (char 1)",
        b'{"a":' + b"[" * 1024 + b"]" * 1024 + b"}": "depth limit exceeded",
    }
    for body, message in cases.items():
        with pytest.raises(MalformedBody) as caught:
            read(body)
        assert caught.value.detail.startswith("the body is not valid JSON: " + message), body
        if not refused_on_purpose(body):  # surrogates: see test_deliberate_differences
            with pytest.raises(MalformedBody):
                reference.decode_json_object(body)


@pytest.mark.parametrize(
    "body", [b"", b" \t\r\n\x0b\x0c", b"[1]", b"1", b'"x"', b"null", b"true", b"NaN", b"[]"]
)
def test_empty_and_non_object_bodies_fail_exactly_as_today(body: bytes) -> None:
    assert reading(body) == reference_reading(body)
    with pytest.raises((MalformedBody, StructureError)) as ours:
        read(body)
    with pytest.raises(type(ours.value)) as theirs:
        reference.decode_json_object(body)
    assert (ours.value.detail, ours.value.errors) == (theirs.value.detail, theirs.value.errors)


def test_deliberate_differences_from_today() -> None:
    refused = [
        b'{"a": "\\ud800"}',  # a lone surrogate: the response encoder could not write it
        b'{"a": "\\udc00\\ud800"}',
        b'{"a": "\xed\xa0\x80", "b": NaN}',  # an encoded surrogate Python's json let through
        '{"a": 1}'.encode("utf-16"),  # only UTF-8
        '{"a": 1}'.encode("utf-32"),
    ]
    for body in refused:
        reference.decode_json_object(body)  # today: accepted
        with pytest.raises(MalformedBody):
            read(body)
    # NaN sends the body to Python's json, whose recursion limit refused deep nesting; the
    # reader takes any nesting up to orjson's 1024.
    deep = b'{"a": NaN, "b": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    with pytest.raises(MalformedBody):
        reference.decode_json_object(deep)
    assert read(deep).kind("b") == "array"


def test_json_semantics_for_bodies_only_python_json_accepted() -> None:
    """Python's json made integers over 18 characters floats; orjson kept 64-bit ones."""
    for body in [
        b'{"a": 1234567890123456789, "b": [1, -1e400], "c": -123456789012345678}',
        b'{"a": 1234567890123456789, "b": 2, "c": -123456789012345678}',
        b'\xef\xbb\xbf{"a": 18446744073709551615, "c": 12345678901234567890123}',
    ]:
        expected = reference.decode_json_object(body)
        document = read(body)
        for key in expected:
            got = document.value(key)
            assert (type(got), repr(got)) == (type(expected[key]), repr(expected[key]))


# --- keys, kinds, paths ----------------------------------------------------------------------

KEYED = (
    b'{"b": 1, "a": {"x": 1, "\\u0078": 2, "y": [3]}, "\\u0062": [4, 5], "c": "s", "d": null,'
    b' "e": true, "f": false, "g": -1.5e3, "\xc3\xa9": {}}'
)


def test_keys_are_unique_in_first_occurrence_order_and_the_last_value_wins() -> None:
    expected = orjson.loads(KEYED)
    document = read(KEYED)
    assert document.keys() == list(expected)
    assert document.value("b") == expected["b"] == [4, 5]
    assert document.object_keys("a") == list(expected["a"]) == ["x", "y"]
    assert document.value("a") == expected["a"]
    kinds = [document.kind(key) for key in expected]
    assert kinds == ["array", "object", "string", "null", "true", "false", "number", "object"]
    assert "zz" not in document and "é" in document
    with pytest.raises(KeyError):
        document.value("zz")


def test_unknown_keys_are_counted_without_building_them() -> None:
    members = ",".join(f'"k{index}": {index}' for index in range(5000))
    body = (
        '{"predictions": [1], '
        + members
        + ', "k7": 0, "params": {"delta": 1, "\\u0071": 2, "r": 3}}'
    ).encode()
    document = read(body)
    unknown, count = document.unknown_keys(["predictions", "params"], limit=3)
    assert (unknown, count) == (["k0", "k1", "k2"], 5000)
    assert document.unknown_keys(["delta"], within="params") == (["q", "r"], 2)
    assert document.unknown_keys(["predictions", "params", *(f"k{i}" for i in range(5000))]) == (
        [],
        0,
    )


def test_arrays_at_the_request_paths_become_json_arrays() -> None:
    body = json.dumps(
        {
            "inputs": [
                {"name": "p", "shape": [2, 2], "data": [[1, 2], [3, 4]]},
                {"name": "t", "shape": [2], "data": [1, 2], "parameters": {"x": [1]}},
            ],
            "regularization": {"l2": 0.1, "parameters": {"w": [[1.5]], "b": 2}},
            "other": {"parameters": [1, 2]},
        }
    ).encode()
    document = read(body)
    inputs = document.value("inputs", arrays={("*", "data")})
    assert isinstance(inputs[0]["data"], JsonArray) and isinstance(inputs[1]["data"], JsonArray)
    assert inputs[0]["shape"] == [2, 2] and inputs[1]["parameters"] == {"x": [1]}
    assert inputs[0]["data"].to_array("p").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    regularization = document.value("regularization", arrays={("parameters",), ("parameters", "*")})
    assert regularization["parameters"]["w"].to_array("w").tolist() == [[1.5]]
    assert regularization["parameters"]["b"] == 2  # not an array: an ordinary value
    whole = document.value("other", arrays={("parameters",), ("parameters", "*")})
    assert isinstance(whole["parameters"], JsonArray) and whole["parameters"].size == 2


def test_size_is_the_nested_size_even_of_arrays_that_do_not_convert() -> None:
    for value in ([], [[]], [[], [1]], [[1, 2], [3]], [[[1, 2, 3]], 4], [["a", "b"], 1]):
        document = read(json.dumps({"a": value}).encode())
        assert document.value("a", arrays={()}).size == codec.nested_size(value)
    deep = [[[[[[0, 0], 0], 0], 0], 0], 0]
    assert read(json.dumps({"a": deep}).encode()).value("a", {()}).size == 2**6


def test_as_int64_is_exact_or_none() -> None:
    def as_int64(text: str):
        return read(('{"a": ' + text + "}").encode()).value("a", arrays={()}).as_int64()

    exact = as_int64("[[9223372036854775807, -9223372036854775808], [0, -0]]")
    assert exact.dtype == np.int64 and exact.tolist() == [[2**63 - 1, -(2**63)], [0, 0]]
    assert as_int64("[]").shape == (0,)
    for text in ("[9223372036854775808]", "[-9223372036854775809]", "[1.0]", "[1e2]",
                 "[NaN]", "[-Infinity]", "[[1], [2, 3]]", "[true]", '["1"]'):  # fmt: skip
        assert as_int64(text) is None, text


# --- memory, the GIL, warm-up ------------------------------------------------------------------


def test_values_too_large_to_build_are_refused_naming_the_field() -> None:
    body = b'{"include": [' + b",".join([b"[]"] * 200_000) + b'], "ok": "mean"}'
    document = read(body)
    with pytest.raises(PayloadTooLarge, match=r"^include: building this value"):
        document.value("include")
    assert document.value("ok") == "mean"
    many = b'{"params": {' + b",".join(b'"k%d":0' % i for i in range(300_000)) + b"}}"
    document = read(many)
    with pytest.raises(PayloadTooLarge, match=r"^params: its 300000 distinct keys"):
        document.object_keys("params")
    assert document.unknown_keys([], within="params")[1] == 300_000


@pytest.mark.slow  # two million doubles, read four times
def test_another_thread_runs_while_a_large_body_is_scanned() -> None:
    """A Python thread keeps counting while the body is read: the scan is one numba call
    without the GIL. Against a call that holds the GIL (orjson.loads of the same body, which
    takes about as long), during which the counter only moves in the switch intervals before
    and after, it must count several times more."""
    values = np.random.default_rng(3).random(2_000_000)
    body = orjson.dumps({"predictions": values}, option=orjson.OPT_SERIALIZE_NUMPY)
    counter = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counter[0] += 1

    thread = threading.Thread(target=count)
    thread.start()
    try:
        turns = {}
        for name, call in (("read", read), ("orjson.loads", orjson.loads)) * 2:
            before = counter[0]
            call(body)
            turns[name] = max(turns.get(name, 0), counter[0] - before)
    finally:
        stop.set()
        thread.join()
    assert turns["read"] > 3 * turns["orjson.loads"], turns


def test_every_kernel_is_compiled_without_the_gil_and_warm() -> None:
    """Every numba function has the project's options; every one Python calls has a compiled
    (or cache-loaded) signature once warm() ran, so no request waits for a compilation; the
    cache is marked as built from the current sources (a change anywhere recompiles all)."""
    from numba.core.caching import FunctionCache

    from service.api.jsonread import arrays, keys, objects, scanner, text, walk, warming
    from service.kernels import cache

    dispatchers = cache.dispatchers(warming.PREFIX)
    assert len(dispatchers) > 30
    for dispatcher in dispatchers:
        name = dispatcher.py_func.__qualname__
        options = dispatcher.targetoptions
        assert options.get("nogil") and not options.get("fastmath"), name
        assert options.get("error_model") == "numpy", name
        assert isinstance(dispatcher._cache, FunctionCache), name  # cache=True
    called_from_python = [
        scanner.scan, scanner.kind_of, text.locate, arrays.analyze, arrays.read_integers,
        keys.distinct_keys, keys.find_key, keys.unknown_keys, keys.keys_end, keys.key_list_cost,
        objects.key_starts, walk.walk, walk.value_start,
    ]  # fmt: skip
    for dispatcher in called_from_python:
        assert dispatcher.signatures, f"{dispatcher.py_func.__name__} was not warmed"
    kept = cache.fingerprint_path(warming.PACKAGE, "jsonread").read_text()
    assert kept == cache.fingerprint(warming.PACKAGE)
