"""The walk that plans how a value is built: tokens for Python, and what they will cost.

A value is built in Python except for the arrays at the requested paths, which become
:class:`~service.api.jsonread.json_array.JsonArray` objects. :func:`walk` goes over the value once
and writes one row per token (``KIND, START, END, TAPE``) that Python turns into objects:

- ``JSON_ARRAY``: an array at a requested path; its interior is not looked at here.
- ``SUBTREE``: with ``collapse``, a container no requested path reaches into; Python builds it
  with one ``orjson.loads`` of its text (the same objects orjson made before, much faster than
  token by token).
- every other token of the value (``OPEN_*``, ``CLOSE``, ``KEY``, scalars).

Paths are encoded as ``sizes`` (length of each path) and ``segments[path, depth] = (start,
end)`` into ``path_bytes`` (the UTF-8 key), ``start`` < 0 meaning "*" (any index or key). Each
open container carries the bitmask of paths that still match the way down to it.

Called twice: first with an empty token table, to count tokens and add up the memory the
result will take (:mod:`.costs`, tokens included), so that the caller can refuse a value before
allocating anything; then with a table of exactly that many rows.
"""

import numpy as np

from service.api.jsonread import costs
from service.api.jsonread.keys import key_equals
from service.api.jsonread.skipping import scalar_end, skip_value, starts_number
from service.api.jsonread.text import skip_whitespace, string_end
from service.kernels.jit import kernel

OPEN_OBJECT, OPEN_ARRAY, CLOSE, KEY, STRING, NUMBER, TRUE, FALSE, NULL = range(9)
JSON_ARRAY, SUBTREE = 9, 10
KIND, START, END, TAPE = range(4)
MAX_NESTING = 1024


@kernel
def _matches(alive, sizes, depth):
    """``(ends_here, goes_deeper)``: some live path ends at ``depth``; some goes past it."""
    ends_here = False
    goes_deeper = False
    for path in range(sizes.size):
        if alive & (np.int64(1) << path):
            if sizes[path] == depth:
                ends_here = True
            elif sizes[path] > depth:
                goes_deeper = True
    return ends_here, goes_deeper


@kernel
def _child_paths(alive, sizes, segments, path_bytes, depth, data, key_quote):
    """Paths still live below the entry at ``depth`` (a key at ``key_quote``, or an array
    index when ``key_quote`` < 0)."""
    live = np.int64(0)
    for path in range(sizes.size):
        bit = np.int64(1) << path
        if not alive & bit or sizes[path] <= depth:
            continue
        start = segments[path, depth, 0]
        if start < 0 or (
            key_quote >= 0
            and key_equals(data, key_quote, path_bytes[start : segments[path, depth, 1]])
        ):
            live |= bit
    return live


@kernel
def subtree_cost(data, position):
    """``(end, numbers, bytes)`` for building the container at ``position`` with orjson."""
    in_object = np.zeros(MAX_NESTING + 1, np.bool_)
    depth = 0
    numbers = 0
    total = 0
    expect_key = False
    length = data.size
    while position < length:
        byte = data[position]
        if byte == 34:
            end, size = costs.string_cost(data, position)
            total += size if expect_key else size + costs.SLOT
            if expect_key:
                total += costs.DICT_MEMBER
            expect_key = False
            position = end
            continue
        if byte == 123 or byte == 91:
            total += costs.SLOT + (costs.DICT if byte == 123 else costs.LIST)
            depth += 1
            in_object[depth] = byte == 123
            expect_key = byte == 123
            position += 1
            if byte == 123:
                after = skip_whitespace(data, position)
                if data[after] != 125:
                    total += costs.DICT_TABLE
            continue
        if byte == 125 or byte == 93:
            depth -= 1
            position += 1
            if depth == 0:
                return position, numbers, total
            continue
        if byte == 44:
            expect_key = in_object[depth]
            position += 1
            continue
        if byte == 32 or byte == 10 or byte == 13 or byte == 9 or byte == 58:
            position += 1
            continue
        end = scalar_end(data, position)
        total += costs.SLOT
        if starts_number(byte):
            numbers += 1
            total += costs.number_cost(data, position, end)
        position = end
    return position, numbers, total


@kernel
def _emit(tokens, count, kind, start, end, tape):
    if tokens.shape[0] > 0:
        tokens[count, KIND] = kind
        tokens[count, START] = start
        tokens[count, END] = end
        tokens[count, TAPE] = tape
    return count + 1


@kernel
def walk(data, start, end, tape, sizes, segments, path_bytes, collapse, tokens):
    """Tokens of the value ``data[start:end]`` (first number at tape index ``tape``) into
    ``tokens`` (or only counted when it has no rows). Returns ``(tokens, bytes)``."""
    kinds = np.empty(MAX_NESTING + 1, np.uint8)
    alive_at = np.empty(MAX_NESTING + 1, np.int64)
    count = 0
    total = 0
    level = 0
    alive = (np.int64(1) << sizes.size) - 1
    position = start
    while True:
        # A value starts at ``position``; ``alive``: the paths that reach it.
        byte = data[position]
        ends_here, goes_deeper = _matches(alive, sizes, level)
        if byte == 91 and ends_here:
            if level == 0:
                value_end, numbers = end, -1
            else:
                value_end, numbers = skip_value(data, position)
            count = _emit(tokens, count, JSON_ARRAY, position, value_end, tape)
            total += costs.JSON_ARRAY + costs.TOKEN
            if numbers < 0:
                break
            tape += numbers
            position = value_end
        elif (byte == 91 or byte == 123) and collapse and not goes_deeper:
            value_end, numbers, size = subtree_cost(data, position)
            count = _emit(tokens, count, SUBTREE, position, value_end, tape)
            total += size + (value_end - position) + costs.TOKEN  # orjson copies the text
            tape += numbers
            position = value_end
        elif byte == 91 or byte == 123:
            is_object = byte == 123
            count = _emit(
                tokens,
                count,
                OPEN_OBJECT if is_object else OPEN_ARRAY,
                position,
                position + 1,
                tape,
            )
            total += costs.TOKEN + costs.SLOT + (costs.DICT if is_object else costs.LIST)
            kinds[level] = byte
            alive_at[level] = alive
            level += 1
            position = skip_whitespace(data, position + 1)
            if data[position] == byte + 2:  # empty
                level -= 1
                count = _emit(tokens, count, CLOSE, position, position + 1, tape)
                total += costs.TOKEN
                position += 1
            else:
                if is_object:
                    total += costs.DICT_TABLE
                position, alive, count, total = _enter_entry(
                    data, position, is_object, alive_at[level - 1], level - 1,
                    sizes, segments, path_bytes, tokens, count, total, tape,
                )  # fmt: skip
                continue
        else:
            if byte == 34:
                value_end, size = costs.string_cost(data, position)
                kind = STRING
            else:
                value_end = scalar_end(data, position)
                size = 0
                kind = NUMBER
                if byte == 116:
                    kind = TRUE
                elif byte == 102:
                    kind = FALSE
                elif byte == 110:
                    kind = NULL
                else:
                    size = costs.number_cost(data, position, value_end)
            count = _emit(tokens, count, kind, position, value_end, tape)
            total += costs.TOKEN + costs.SLOT + size
            if kind == NUMBER:
                tape += 1
            position = value_end
        # The value just ended: close containers until one has another entry.
        while level > 0:
            position = skip_whitespace(data, position)
            byte = data[position]
            if byte == 44:
                position = skip_whitespace(data, position + 1)
                break
            level -= 1
            count = _emit(tokens, count, CLOSE, position, position + 1, tape)
            total += costs.TOKEN
            position += 1
        if level == 0:
            break
        is_object = kinds[level - 1] == 123
        position, alive, count, total = _enter_entry(
            data, position, is_object, alive_at[level - 1], level - 1,
            sizes, segments, path_bytes, tokens, count, total, tape,
        )  # fmt: skip
    return count, total


@kernel
def _enter_entry(data, position, is_object, parent_alive, depth, sizes, segments, path_bytes,
                 tokens, count, total, tape):  # fmt: skip
    """At an entry of an open container: emit its key (objects) and move to its value.
    Returns ``(value position, live paths, count, total)``."""
    if not is_object:
        alive = _child_paths(parent_alive, sizes, segments, path_bytes, depth, data, -1)
        return position, alive, count, total
    key_end, size = costs.string_cost(data, position)
    count = _emit(tokens, count, KEY, position, key_end, tape)
    total += costs.TOKEN + costs.DICT_MEMBER + size
    alive = _child_paths(parent_alive, sizes, segments, path_bytes, depth, data, position)
    position = skip_whitespace(data, key_end)  # the colon
    position = skip_whitespace(data, position + 1)
    return position, alive, count, total


@kernel
def value_start(data, key_quote):
    """Where the value of the member whose key starts at ``key_quote`` begins."""
    position = skip_whitespace(data, string_end(data, key_quote))
    return skip_whitespace(data, position + 1)
