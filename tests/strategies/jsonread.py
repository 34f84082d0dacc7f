"""Hypothesis strategies for JSON text: every textual form the reader must treat as before.

Numbers in every spelling (signs, leading zeros after the point, exponents of either case and
sign, long mantissas, integers past 2**53/2**63/2**64, ``NaN``/``Infinity``, out of range),
strings with every kind of escape, whitespace between any two tokens, duplicate keys, arrays
that are rectangular or ragged by one entry or one level, and malformed variants made by
cutting, inserting or deleting one character.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

SPACES = st.sampled_from(["", "", "", " ", "\n", "\t ", "\r\n  "])

_SPECIAL_NUMBERS = [
    "0", "-0", "-0.0", "0.0", "1E5", "1e+5", "1e-5", "-1E-0", "0e0", "NaN", "Infinity",
    "-Infinity", "1e400", "-1e400", "1e-400", "9007199254740993", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "123456789012345678",
    "-12345678901234567", "1234567890123456789", "1.7976931348623157e308",
    "1.7976931348623159e308", "4.9e-324", "2.4703282292062327e-324", "0.000001",
]  # fmt: skip


def _spelled(mantissa: str, point: int, exponent: int | None, sign: str, capital: bool) -> str:
    digits = mantissa.lstrip("0") or "0"
    if 0 < point < len(digits):
        digits = digits[:point] + "." + digits[point:]
    text = sign + digits
    if exponent is not None:
        text += (
            ("E" if capital else "e") + ("+" if exponent > 0 and capital else "") + str(exponent)
        )
    return text


NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(
        _spelled,
        st.text("0123456789", min_size=1, max_size=30),
        st.integers(0, 30),
        st.none() | st.integers(-340, 330),
        st.sampled_from(["", "-"]),
        st.booleans(),
    ),
    st.sampled_from(_SPECIAL_NUMBERS),
)
STRINGS = st.builds(
    lambda text, ascii_only: json.dumps(text, ensure_ascii=ascii_only),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=6)
    | st.sampled_from(["", "é", "😀", 'q"uote', "back\\slash", "\u2028", "\x00", "a/b"]),
    st.booleans(),
)
KEYS = STRINGS | st.sampled_from(['"a"', '"data"', '"parameters"', '"\\u0061"', '"b"'])
SCALARS = NUMBERS | STRINGS | st.sampled_from(["true", "false", "null"])


@st.composite
def spaced_join(draw, items: list[str], opening: str, closing: str) -> str:
    separator = draw(SPACES) + "," + draw(SPACES)
    return opening + draw(SPACES) + separator.join(items) + draw(SPACES) + closing


def _containers(children):
    arrays = st.lists(children, max_size=4).flatmap(lambda items: spaced_join(items, "[", "]"))
    members = st.lists(
        st.tuples(KEYS, SPACES, children).map(lambda m: m[0] + m[1] + ":" + m[1] + m[2]),
        max_size=4,
    )
    objects = members.flatmap(lambda items: spaced_join(items, "{", "}"))
    return arrays | objects


VALUES = st.recursive(SCALARS, _containers, max_leaves=12)


@st.composite
def numeric_arrays(draw) -> str:
    """Mostly rectangular arrays of numbers, sometimes one entry off in length, kind or
    depth: what ``to_array`` accepts and everything near it."""
    shape = draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    odd_leaf = draw(st.sampled_from([None, None, None, "true", "null", '"x"', "{}", "[1]", "[]"]))

    def build(level: int) -> str:
        if level == len(shape):
            if odd_leaf is not None and draw(st.integers(0, 9)) == 0:
                return odd_leaf
            return draw(NUMBERS)
        length = shape[level] + draw(st.sampled_from([0, 0, 0, 0, 0, 0, 0, 1, -1]))
        return draw(spaced_join([build(level + 1) for _ in range(max(length, 0))], "[", "]"))

    return build(0)


@st.composite
def deep_arrays(draw) -> str:
    """Arrays 28..36 deep: around the 32-dimension limit, ragged or not."""
    depth = draw(st.integers(28, 36))
    inner = draw(st.sampled_from(["0", "1.5", "[]", "0,[1]", "true", "[0],[0,1]"]))
    text = "[" * depth + inner + "]" * depth
    return "[" + text + ("," + text if draw(st.booleans()) else "") + "]"


ARRAY_VALUES = numeric_arrays() | deep_arrays() | VALUES
FIELDS = st.sampled_from(['"predictions"', '"targets"', '"params"', '"x"', '"predictions"'])


@st.composite
def tensor_list(draw) -> str:
    tensors = [
        '{"name": "t", "shape": [1], "id": '
        + draw(SCALARS)
        + ', "data": '
        + draw(ARRAY_VALUES)
        + ', "parameters": '
        + draw(VALUES)
        + "}"
        for _ in range(draw(st.integers(0, 2)))
    ]
    return draw(spaced_join(tensors, "[", "]"))


@st.composite
def regularization(draw) -> str:
    parameters = draw(ARRAY_VALUES | st.dictionaries(st.sampled_from(["w", "b"]), ARRAY_VALUES).map(
        lambda named: "{" + ",".join(json.dumps(k) + ":" + v for k, v in named.items()) + "}"
    ))  # fmt: skip
    return '{"l2": 0.5, "parameters": ' + parameters + "}"


@st.composite
def bodies(draw) -> bytes:
    """A request body: top-level members of every kind, sometimes damaged."""
    members = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(FIELDS | st.just('"inputs"') | st.just('"regularization"'))
        if name == '"inputs"':
            value = draw(tensor_list())
        elif name == '"regularization"':
            value = draw(regularization())
        else:
            value = draw(ARRAY_VALUES)
        members.append(name + draw(SPACES) + ":" + draw(SPACES) + value)
    text = draw(SPACES) + draw(spaced_join(members, "{", "}")) + draw(SPACES)
    if draw(st.integers(0, 3)) == 0:
        text = draw(damaged(text))
    return text.encode()


@st.composite
def damaged(draw, text: str) -> str:
    """One character inserted, deleted or replaced, or the text cut short."""
    position = draw(st.integers(0, len(text)))
    edit = draw(st.sampled_from(["insert", "delete", "cut"]))
    if edit == "cut":
        return text[:position]
    inserted = draw(st.sampled_from([*',:[]{}"\\x0-.eE+ \x01', "tru", "nul", "\u00e9"]))
    if edit == "delete":
        return text[:position] + text[position + 1 :]
    return text[:position] + inserted + text[position:]
