"""One walk over a JSON array that says everything ``codec.to_array`` would find out.

:func:`analyze` reports, without building anything:

- whether the array converts (NumPy would make a numeric array of it): rectangular, only
  numbers (booleans are not), at most ``MAX_DIMENSIONS`` dimensions; and then its shape;
- its lengths along first entries, whose product is ``codec.nested_size``;
- otherwise the problem ``codec._first_problem`` finds first. That search is a depth-first
  walk that, at each array, first looks for a change between nested and non-nested children,
  then for a child whose length differs from the first child's, then recurses into each child
  in order (or, for non-nested children, looks for the first non-number). A streaming walk sees
  a node's children one by one, so each open array keeps what it has seen, and the first
  problem of the subtree is kept in one buffer owned by the shallowest open array that has one
  (later siblings cannot beat an earlier sibling, and an array's own mixed/width problem beats
  its children's, which is why it overwrites the buffer when it closes).

The walk trusts the scan (the text is valid JSON) and allocates only per-depth state.
"""

import numpy as np

from service.api.jsonread.jit import inline_kernel, kernel
from service.api.jsonread.skipping import skip_value, starts_number

MAX_DIMENSIONS = 32  # service.api.codec.MAX_DIMENSIONS
MAX_NESTING = 1024  # the scan's limit

# kinds of array entries, as the messages name them
KIND_NUMBER, KIND_STRING, KIND_NULL, KIND_BOOLEAN, KIND_OBJECT, KIND_ARRAY = range(6)
# problem codes (see codec._first_problem)
NO_PROBLEM, MIXED, WIDTH, NOT_A_NUMBER, TOO_DEEP = range(5)
# result slots
CONVERTS, DIMENSIONS, NUMBERS, CHAIN_DEPTH, PROBLEM, PROBLEM_DEPTH, DETAIL_A, DETAIL_B = range(8)
RESULT_SIZE = 8
_NONE = -2  # no level owns a problem yet


def nesting_bound(start: int, end: int) -> int:
    """Deepest an array of ``end - start`` bytes can nest (each level takes "[]")."""
    return min(MAX_NESTING, (end - start) // 2 + 1)


@kernel
def entry_kind(byte):
    if byte == 91:
        return KIND_ARRAY
    if byte == 123:
        return KIND_OBJECT
    if byte == 34:
        return KIND_STRING
    if byte == 110:
        return KIND_NULL
    if byte == 116 or byte == 102:
        return KIND_BOOLEAN
    return KIND_NUMBER


@kernel
def _reset_level(level, width, mixed_at, width_bad_at, scalar_bad_at):
    width[level] = -1
    mixed_at[level] = -1
    width_bad_at[level] = -1
    scalar_bad_at[level] = -1


@kernel
def _see_entry(
    level, index, kind, first_kind, mixed_at, mixed_kind, scalar_bad_at, scalar_bad_kind
):
    """Note entry ``index`` of the open array at ``level``."""
    nested = kind == KIND_ARRAY
    if index == 0:
        first_kind[level] = kind
    elif nested != (first_kind[level] == KIND_ARRAY) and mixed_at[level] < 0:
        mixed_at[level] = index
        mixed_kind[level] = kind
    if not nested and kind != KIND_NUMBER and scalar_bad_at[level] < 0:
        scalar_bad_at[level] = index
        scalar_bad_kind[level] = kind


@kernel
def _record(problem_path, result, index_at, level, position, code, detail_a, detail_b):
    """Keep a problem at the array ``level`` deep (at its entry ``position``, or at the array
    itself when ``position`` < 0)."""
    for depth in range(level):
        problem_path[depth] = index_at[depth + 1]
    size = level
    if position >= 0:
        problem_path[level] = position
        size += 1
    result[PROBLEM] = code
    result[PROBLEM_DEPTH] = size
    result[DETAIL_A] = detail_a
    result[DETAIL_B] = detail_b


@inline_kernel
def _rows(state):
    """The nine per-level rows of ``state`` (views), in the order :func:`analyze` documents."""
    return (state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7],
            state[8])  # fmt: skip


@kernel
def _close_problem(level, length, owner, state, problem_path, result):
    """The first problem of the array closing at ``level`` (its own, else its children's), kept
    in the buffer; returns the level that now owns the buffer. Called only when no shallower
    array already owns it."""
    (index_at, first_kind, width, mixed_at, mixed_kind, width_bad_at, width_bad_length,
     scalar_bad_at, scalar_bad_kind) = _rows(state)  # fmt: skip
    if level > MAX_DIMENSIONS:
        return owner  # its ancestor at MAX_DIMENSIONS is itself the problem
    if level == MAX_DIMENSIONS:
        _record(problem_path, result, index_at, level, -1, TOO_DEEP, 0, 0)
        return level - 1
    if mixed_at[level] >= 0:
        _record(problem_path, result, index_at, level, mixed_at[level], MIXED,
                mixed_kind[level], first_kind[level])  # fmt: skip
        return level - 1
    if length > 0 and first_kind[level] == KIND_ARRAY:
        if width_bad_at[level] >= 0:
            _record(problem_path, result, index_at, level, width_bad_at[level], WIDTH,
                    width_bad_length[level], width[level])  # fmt: skip
            return level - 1
        return level - 1 if owner == level else _NONE
    if scalar_bad_at[level] >= 0:
        _record(problem_path, result, index_at, level, scalar_bad_at[level], NOT_A_NUMBER,
                scalar_bad_kind[level], 0)  # fmt: skip
        return level - 1
    return _NONE


@kernel
def analyze(data, start, shape, chain, problem_path, result):
    """Walk the array at ``data[start]``; fill ``shape`` and ``chain`` (int64, as long as the
    array can nest: ``nesting_bound``), ``problem_path`` (int64, MAX_DIMENSIONS + 1) and
    ``result`` (RESULT_SIZE). Returns the array's end position."""
    nesting = shape.size
    count = np.zeros(nesting, np.int64)
    on_chain = np.zeros(nesting, np.bool_)
    shape_known = np.zeros(nesting, np.bool_)
    # Per level: index_at (position of the array in its parent; every level), and for the
    # levels whose entries are examined: first entry's kind, first entry's length, first
    # mixed entry and its kind, first entry of another length and that length, first
    # non-number and its kind.
    state = np.full((9, nesting), -1, np.int64)
    (index_at, first_kind, width, mixed_at, mixed_kind, width_bad_at, width_bad_length,
     scalar_bad_at, scalar_bad_kind) = _rows(state)  # fmt: skip
    dimensions = -1  # unknown until the first chain of first entries ends
    rectangular = True
    numeric = True
    numbers = 0
    chain_depth = 0
    owner = _NONE
    level = 0
    on_chain[0] = True
    result[:] = 0
    position = start + 1
    while True:
        byte = data[position]
        if byte == 32 or byte == 10 or byte == 13 or byte == 9 or byte == 44:
            position += 1
            continue
        if byte == 93:  # the array at ``level`` closes
            length = count[level]
            if on_chain[level]:
                chain[level] = length
                chain_depth = max(chain_depth, level + 1)
            if dimensions < 0:
                dimensions = level + 1  # the first chain ends in an empty array
            if level < dimensions:
                if shape_known[level]:
                    rectangular = rectangular and shape[level] == length
                else:
                    shape[level] = length
                    shape_known[level] = True
            if owner == _NONE or owner >= level:
                owner = _close_problem(level, length, owner, state, problem_path, result)
            position += 1
            if level == 0:
                break
            parent = level - 1
            if parent < MAX_DIMENSIONS:
                if index_at[level] == 0:
                    width[parent] = length
                elif width_bad_at[parent] < 0 and length != width[parent]:
                    width_bad_at[parent] = index_at[level]
                    width_bad_length[parent] = length
            level = parent
            continue
        kind = entry_kind(byte)
        index = count[level]
        count[level] = index + 1
        if level < MAX_DIMENSIONS:
            _see_entry(
                level, index, kind, first_kind, mixed_at, mixed_kind, scalar_bad_at, scalar_bad_kind
            )
        if kind == KIND_ARRAY:
            level += 1
            count[level] = 0
            index_at[level] = index
            on_chain[level] = on_chain[level - 1] and index == 0
            if dimensions >= 0 and level >= dimensions:
                rectangular = False
            if level < MAX_DIMENSIONS:
                _reset_level(level, width, mixed_at, width_bad_at, scalar_bad_at)
            position += 1
            continue
        if dimensions < 0:
            dimensions = level + 1
        elif level + 1 != dimensions:
            rectangular = False
        if kind == KIND_NUMBER:
            numbers += 1
        else:
            numeric = False
        position, _ = skip_value(data, position)
    converts = rectangular and numeric and dimensions <= MAX_DIMENSIONS
    result[CONVERTS] = 1 if converts else 0
    result[DIMENSIONS] = dimensions
    result[NUMBERS] = numbers
    result[CHAIN_DEPTH] = chain_depth
    if owner != -1:
        result[PROBLEM] = NO_PROBLEM
    return position


INT64_LIMIT = np.uint64(1 << 63)


#: What :func:`integer_token` found: an int64 literal, another number, an integer past int64.
INT64_LITERAL, OTHER_NUMBER, BEYOND_LITERAL = 0, 1, 2


@inline_kernel
def integer_token(data, position, end):
    """The number token starting at ``position``: ``(its end, its magnitude, negative, kind)``,
    ``kind`` one of INT64_LITERAL (the magnitude is exact), OTHER_NUMBER (a fraction, an
    exponent, NaN or Infinity) or BEYOND_LITERAL (an integer literal past int64)."""
    negative = data[position] == 45
    if negative:
        position += 1
    magnitude = np.uint64(0)
    beyond = False
    while position < end and 48 <= data[position] <= 57:
        digit = np.uint64(data[position] - 48)
        if magnitude > (INT64_LIMIT - digit) // np.uint64(10):
            beyond = True
        else:
            magnitude = magnitude * np.uint64(10) + digit
        position += 1
    kind = INT64_LITERAL
    if position < end and data[position] in (46, 101, 69, 78, 73):
        kind = OTHER_NUMBER
    elif beyond or (magnitude == INT64_LIMIT and not negative):
        kind = BEYOND_LITERAL
    while position < end and data[position] not in (44, 93, 32, 10, 13, 9):
        position += 1  # the rest of the token
    return position, magnitude, negative, kind


@inline_kernel
def signed(magnitude, negative):
    """The int64 of a magnitude up to 2**63 (negative) or 2**63 - 1."""
    if negative:
        return -np.int64(magnitude - np.uint64(1)) - 1 if magnitude else np.int64(0)
    return np.int64(magnitude)


@kernel
def read_integers(data, start, end, out):
    """The number tokens of ``data[start:end]`` as exact int64 into ``out``; False as soon as
    one is not an integer literal within int64 (the caller knows they are all numbers)."""
    written = 0
    position = start
    while position < end:
        if not starts_number(data[position]):
            position += 1
            continue
        position, magnitude, negative, kind = integer_token(data, position, end)
        if kind != INT64_LITERAL:
            return False
        out[written] = signed(magnitude, negative)
        written += 1
    return True


@kernel
def number_span(data, start, end, index):
    """``(start, end)`` of the ``index``-th number token (0-based, document order) of
    ``data[start:end]``, an array of numbers; ``(-1, -1)`` when it has fewer. For messages
    that quote a value as it was sent."""
    seen = 0
    position = start
    while position < end:
        if not starts_number(data[position]):
            position += 1
            continue
        first = position
        position += 1
        while position < end:
            byte = data[position]
            if byte == 44 or byte == 93 or byte == 32 or byte == 10 or byte == 13 or byte == 9:
                break  # , ] and whitespace end a number
            position += 1
        if seen == index:
            return first, position
        seen += 1
    return -1, -1


INTEGRAL, FRACTIONAL, BEYOND_INT64 = 0, 1, 2


@kernel
def exact_integers(data, start, end, floats, out):
    """Every number of ``data[start:end]`` (an array of numbers, ``floats`` its values in C
    order) as an exact int64 into ``out``: an integer literal from its digits (exact past
    2**53), any other literal from its double. Returns ``(INTEGRAL, -1)``, or the reason
    (``FRACTIONAL``, ``BEYOND_INT64``) and the index of the first number that is not an int64."""
    index = 0
    position = start
    while position < end:
        if not starts_number(data[position]):
            position += 1
            continue
        position, magnitude, negative, kind = integer_token(data, position, end)
        if kind == INT64_LITERAL:
            out[index] = signed(magnitude, negative)
        elif kind == BEYOND_LITERAL:
            return BEYOND_INT64, index
        else:  # 2.0, 2.5, 1e3: its double decides
            value = floats[index]
            if value != np.floor(value):
                return FRACTIONAL, index
            if not (-9.223372036854775808e18 <= value < 9.223372036854775808e18):
                return BEYOND_INT64, index
            out[index] = np.int64(value)
        index += 1
    return INTEGRAL, -1
