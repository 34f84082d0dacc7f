"""Object keys compared as the strings they decode to, without making Python strings.

``{"a": 1, "\\u0061": 2}`` has one key, as ``dict(orjson.loads(body))`` has: keys are
compared after decoding their escapes. A key is decoded (into UTF-8 bytes) only when it holds a
backslash; the rest are compared as they stand. Duplicates are resolved in numba with an open
addressing table sized by the number of distinct keys, so an object of a million members costs
a few bytes per distinct key here, and Python strings are made only for keys the caller asks
for.

Key positions are those of the opening quote.
"""

import numpy as np

from service.api.jsonread import costs
from service.api.jsonread.text import string_end
from service.kernels.jit import kernel

QUOTE, BACKSLASH = 34, 92
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


@kernel
def _hex(data, position):
    value = 0
    for offset in range(4):
        byte = data[position + offset]
        if byte <= 57:
            digit = byte - 48
        elif byte <= 70:
            digit = byte - 55
        else:
            digit = byte - 87
        value = value * 16 + digit
    return value


@kernel
def _put_utf8(code, out, size):
    """Append the UTF-8 encoding of ``code`` to ``out[:size]``; returns the new size."""
    if code < 0x80:
        out[size] = code
        return size + 1
    if code < 0x800:
        out[size] = 0xC0 | (code >> 6)
        out[size + 1] = 0x80 | (code & 0x3F)
        return size + 2
    if code < 0x10000:
        out[size] = 0xE0 | (code >> 12)
        out[size + 1] = 0x80 | ((code >> 6) & 0x3F)
        out[size + 2] = 0x80 | (code & 0x3F)
        return size + 3
    out[size] = 0xF0 | (code >> 18)
    out[size + 1] = 0x80 | ((code >> 12) & 0x3F)
    out[size + 2] = 0x80 | ((code >> 6) & 0x3F)
    out[size + 3] = 0x80 | (code & 0x3F)
    return size + 4


@kernel
def decode_key(data, quote, out):
    """UTF-8 bytes of the (validated) string at ``quote`` into ``out``; returns their count.
    ``out`` must hold the string's raw length (decoding never lengthens a string)."""
    position = quote + 1
    size = 0
    while True:
        byte = data[position]
        if byte == QUOTE:
            return size
        if byte != BACKSLASH:
            out[size] = byte
            size += 1
            position += 1
            continue
        kind = data[position + 1]
        if kind != 117:  # a one-letter escape
            if kind == 98:
                out[size] = 8
            elif kind == 102:
                out[size] = 12
            elif kind == 110:
                out[size] = 10
            elif kind == 114:
                out[size] = 13
            elif kind == 116:
                out[size] = 9
            else:
                out[size] = kind  # \" \\ \/
            size += 1
            position += 2
            continue
        code = _hex(data, position + 2)
        position += 6
        if 0xD800 <= code <= 0xDBFF:  # the scan made sure an escaped low surrogate follows
            low = _hex(data, position + 2)
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            position += 6
        size = _put_utf8(code, out, size)


@kernel
def _hash(buffer, size):
    value = FNV_OFFSET
    for index in range(size):
        value = (value ^ np.uint64(buffer[index])) * FNV_PRIME
    return value


@kernel
def _same(first, first_size, second, second_size):
    same = first_size == second_size
    index = 0
    while same and index < first_size:
        same = first[index] == second[index]
        index += 1
    return same


@kernel
def longest_key(data, key_starts):
    """Raw length of the longest key: the size of a decode buffer."""
    longest = 0
    for quote in key_starts:
        position = quote + 1
        while data[position] != QUOTE:
            position += 2 if data[position] == BACKSLASH else 1
        longest = max(longest, position - quote)
    return longest


@kernel
def distinct_keys(data, key_starts):
    """``(first, last)``: for each distinct key in order of first occurrence, the index (into
    ``key_starts``) of its first and of its last occurrence (the member whose value wins).

    Memory: an int32 table of at most four slots per distinct key, and three int64 per
    distinct key (grown by doubling), whatever the number of duplicates.
    """
    count = key_starts.size
    longest = longest_key(data, key_starts)
    this = np.empty(longest + 1, np.uint8)
    other = np.empty(longest + 1, np.uint8)
    capacity = 16
    table = np.full(capacity, -1, np.int32)  # slot -> distinct key number
    first = np.empty(8, np.int64)
    last = np.empty(8, np.int64)
    hashes = np.empty(8, np.uint64)
    distinct = 0
    for member in range(count):
        size = decode_key(data, key_starts[member], this)
        code = _hash(this, size)
        slot = np.int64(code & np.uint64(capacity - 1))
        while True:
            number = table[slot]
            if number < 0:
                break
            if hashes[number] == code:
                other_size = decode_key(data, key_starts[first[number]], other)
                if _same(this, size, other, other_size):
                    break
            slot = (slot + 1) & (capacity - 1)
        if number >= 0:
            last[number] = member
            continue
        if distinct == first.size:
            first = _grown(first)
            last = _grown(last)
            hashes = _grown_hashes(hashes)
        first[distinct] = member
        last[distinct] = member
        hashes[distinct] = code
        table[slot] = distinct
        distinct += 1
        if 2 * distinct > capacity:  # keep the table at most half full
            capacity *= 2
            table = np.full(capacity, -1, np.int32)
            for number in range(distinct):
                slot = np.int64(hashes[number] & np.uint64(capacity - 1))
                while table[slot] >= 0:
                    slot = (slot + 1) & (capacity - 1)
                table[slot] = number
    return first[:distinct], last[:distinct]


@kernel
def _grown(values):
    bigger = np.empty(values.size * 2, np.int64)
    bigger[: values.size] = values
    return bigger


@kernel
def _grown_hashes(values):
    bigger = np.empty(values.size * 2, np.uint64)
    bigger[: values.size] = values
    return bigger


@kernel
def find_key(data, key_starts, wanted):
    """Index of the last member whose key decodes to the UTF-8 bytes ``wanted``, or -1."""
    longest = longest_key(data, key_starts)
    buffer = np.empty(longest + 1, np.uint8)
    found = -1
    for member in range(key_starts.size):
        size = decode_key(data, key_starts[member], buffer)
        if _same(buffer, size, wanted, wanted.size):
            found = member
    return found


@kernel
def key_equals(data, quote, wanted):
    """Whether the key at ``quote`` decodes to the UTF-8 bytes ``wanted``."""
    position = quote + 1
    escaped = False
    while data[position] != QUOTE:
        if data[position] == BACKSLASH:
            escaped = True
            position += 2
        else:
            position += 1
    raw_length = position - quote - 1
    if not escaped:
        return _same(data[quote + 1 : position], raw_length, wanted, wanted.size)
    buffer = np.empty(raw_length, np.uint8)
    size = decode_key(data, quote, buffer)
    return _same(buffer, size, wanted, wanted.size)


@kernel
def unknown_keys(data, key_starts, first, allowed, allowed_offsets):
    """Which distinct keys (``first``: their first members) are not among the allowed keys
    (UTF-8, concatenated in ``allowed``, split at ``allowed_offsets``): a bool per key."""
    longest = longest_key(data, key_starts)
    buffer = np.empty(longest + 1, np.uint8)
    unknown = np.ones(first.size, np.bool_)
    for number in range(first.size):
        size = decode_key(data, key_starts[first[number]], buffer)
        for choice in range(allowed_offsets.size - 1):
            start = allowed_offsets[choice]
            end = allowed_offsets[choice + 1]
            if _same(buffer, size, allowed[start:end], end - start):
                unknown[number] = False
                break
    return unknown


@kernel
def keys_end(data, key_starts):
    """Position after the closing quote of each key."""
    ends = np.empty(key_starts.size, np.int64)
    for index in range(key_starts.size):
        ends[index] = string_end(data, key_starts[index])
    return ends


@kernel
def key_list_cost(data, key_starts):
    """Memory of these keys as Python strings in a list and a dict."""
    total = 0
    for quote in key_starts:
        _, size = costs.string_cost(data, quote)
        total += size + 8 + costs.DICT_MEMBER
    return total
