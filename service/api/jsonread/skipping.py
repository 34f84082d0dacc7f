"""Moving over values already validated by :func:`.scanner.scan`, counting number tokens.

After the scan, a value's end is found without re-validating: strings end at the first
unescaped quote, containers at the bracket that balances the opening one, numbers and words
at the next delimiter. The count of number tokens passed is what keeps tape indices right.
"""

from service.api.jsonread.text import string_end
from service.kernels.jit import kernel

QUOTE, COMMA, COLON = 34, 44, 58
OPEN_OBJECT, CLOSE_OBJECT, OPEN_ARRAY, CLOSE_ARRAY = 123, 125, 91, 93


@kernel
def is_delimiter(byte):
    return byte in (COMMA, CLOSE_ARRAY, CLOSE_OBJECT, 32, 10, 13, 9, COLON)


@kernel
def starts_number(byte):
    """Digits, '-', and the N of NaN / I of Infinity (tape entries too)."""
    return 48 <= byte <= 57 or byte == 45 or byte == 78 or byte == 73


@kernel
def scalar_end(data, position):
    """End of the number or word at ``position``."""
    length = data.size
    position += 1
    while position < length and not is_delimiter(data[position]):
        position += 1
    return position


@kernel
def skip_value(data, position):
    """``(end, numbers)``: the end of the value at ``position`` and the number tokens in it."""
    byte = data[position]
    if byte == QUOTE:
        return string_end(data, position), 0
    if byte != OPEN_ARRAY and byte != OPEN_OBJECT:
        return scalar_end(data, position), 1 if starts_number(byte) else 0
    depth = 0
    numbers = 0
    length = data.size
    while position < length:
        byte = data[position]
        if byte == QUOTE:
            position = string_end(data, position)
            continue
        if byte in (OPEN_ARRAY, OPEN_OBJECT):
            depth += 1
        elif byte in (CLOSE_ARRAY, CLOSE_OBJECT):
            depth -= 1
            if depth == 0:
                return position + 1, numbers
        elif starts_number(byte):
            numbers += 1
            position = scalar_end(data, position)
            continue
        position += 1
    return position, numbers
