"""What building a JSON value as Python objects costs in memory, estimated from its text.

The estimates are upper bounds for CPython 3.11+ on 64 bits with pymalloc (16-byte size
classes), measured with orjson on a million-entry list of each kind: a list slot is 8 bytes and
orjson's parse holds about 16 more per value while it runs; ``[]`` costs 56 bytes, ``{}`` 64
and a dict ~64 per member with its table's growth; a str 49 + n bytes (ASCII) or up to
76 + 4n; a float or an int 32 (48 past 2**62); small ints (-5..256), ``true``, ``false``,
``null`` and ``""`` are shared objects. :mod:`.walk` adds these up before anything is built,
so a value that would not fit its budget is refused without being allocated.
"""

from service.kernels.jit import kernel

SLOT = 24  # the pointer in the parent, and the parse's own per-value record
LIST = 56
DICT = 64
DICT_TABLE = 160  # the first allocation of a non-empty dict's table
DICT_MEMBER = 64
NUMBER = 32
LONG_INTEGER = 48
JSON_ARRAY = 512  # a JsonArray object: small, whatever the array's length
TOKEN = 32  # one row of the walk's token table (four int64)


@kernel
def rounded(size):
    return (size + 15) // 16 * 16


@kernel
def string_cost(data, quote):
    """``(end, bytes)`` for the string at ``quote``: its end, and the str it decodes to."""
    position = quote + 1
    ascii = True
    while True:
        byte = data[position]
        if byte == 34:
            break
        if byte == 92:
            if data[position + 1] == 117:
                ascii = False
            position += 2
            continue
        if byte >= 128:
            ascii = False
        position += 1
    raw = position - quote - 1
    if raw == 0:
        return position + 1, 0
    if ascii:
        return position + 1, rounded(49 + raw)
    return position + 1, rounded(76 + 4 * raw)


@kernel
def number_cost(data, start, end):
    """The int or float a number token becomes."""
    digits = end - start
    integer = True
    for position in range(start, end):
        byte = data[position]
        if byte == 46 or byte == 101 or byte == 69 or byte == 78 or byte == 73:
            integer = False
            break
    if not integer:
        return NUMBER
    negative = data[start] == 45
    if negative:
        digits -= 1
    if digits <= 3:
        value = 0
        for position in range(end - digits, end):
            value = value * 10 + (data[position] - 48)
        if value <= 256 and not (negative and value > 5):
            return 0
    if digits >= 19:
        return LONG_INTEGER
    return NUMBER
