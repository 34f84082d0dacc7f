"""Lexing of everything but numbers: whitespace, strings, ``true``/``false``/``null``.

Exactly RFC 8259, as orjson reads it: whitespace is space, tab, line feed and carriage
return; a string holds no byte below 0x20; escapes are ``\\" \\\\ \\/ \\b \\f \\n \\r \\t`` and
``\\uXXXX``, where a high surrogate must be followed by an escaped low one and a low one may not
stand alone (the response encoder cannot write a lone surrogate); every other byte is part of a
well-formed UTF-8 sequence (no overlong forms, no encoded surrogates, nothing above U+10FFFF).

Each function takes the body as a uint8 array and a position, and returns a status (see
:mod:`.status`) with the position where it stopped.
"""

from service.api.jsonread import status
from service.api.jsonread.jit import inline_kernel, kernel

QUOTE = 34
BACKSLASH = 92


@inline_kernel
def skip_whitespace(data, position):
    length = data.size
    while position < length:
        byte = data[position]
        if byte != 32 and byte != 10 and byte != 13 and byte != 9:
            break
        position += 1
    return position


@kernel
def is_blank(data):
    """Whether every byte is ASCII whitespace as ``bytes.strip`` sees it (\\v and \\f too)."""
    for index in range(data.size):
        byte = data[index]
        if byte != 32 and not 9 <= byte <= 13:
            return False
    return True


@kernel
def _hex_value(data, position):
    """The value of four hex digits at ``position``, or -1."""
    value = 0
    for offset in range(4):
        byte = data[position + offset]
        if 48 <= byte <= 57:
            digit = byte - 48
        elif 65 <= byte <= 70:
            digit = byte - 55
        elif 97 <= byte <= 102:
            digit = byte - 87
        else:
            return -1
        value = value * 16 + digit
    return value


@kernel
def _read_escape(data, position):
    """Validate the escape whose backslash is at ``position``: ``(status, next position)``."""
    length = data.size
    if position + 1 >= length:
        return status.END_OF_DATA, length
    kind = data[position + 1]
    # " \ / b f n r t
    if kind == 34 or kind == 92 or kind == 47 or kind == 98 or kind == 102:
        return status.OK, position + 2
    if kind == 110 or kind == 114 or kind == 116:
        return status.OK, position + 2
    if kind != 117:  # 'u'
        return status.INVALID_ESCAPE, position
    if position + 6 > length:
        return status.END_OF_DATA, length
    code = _hex_value(data, position + 2)
    if code < 0:
        return status.INVALID_ESCAPE, position
    if 0xDC00 <= code <= 0xDFFF:
        return status.LONE_LOW_SURROGATE, position
    if code < 0xD800 or code > 0xDBFF:
        return status.OK, position + 6
    # A high surrogate: an escaped low surrogate must follow.
    follow = position + 6
    if follow + 1 >= length or data[follow] != BACKSLASH or data[follow + 1] != 117:
        return status.NO_LOW_SURROGATE, position
    if follow + 6 > length:
        return status.END_OF_DATA, length
    low = _hex_value(data, follow + 2)
    if low < 0xDC00 or low > 0xDFFF:
        return status.INVALID_LOW_SURROGATE, position
    return status.OK, position + 12


@kernel
def _utf8_length(data, position):
    """Length of the well-formed UTF-8 sequence starting at ``position`` (lead byte >= 0x80),
    or 0 when it is malformed (Unicode 15, table 3-7)."""
    length = data.size
    lead = data[position]
    if 0xC2 <= lead <= 0xDF:
        size, low, high = 2, 0x80, 0xBF
    elif lead == 0xE0:
        size, low, high = 3, 0xA0, 0xBF
    elif 0xE1 <= lead <= 0xEC or 0xEE <= lead <= 0xEF:
        size, low, high = 3, 0x80, 0xBF
    elif lead == 0xED:
        size, low, high = 3, 0x80, 0x9F  # no encoded surrogates
    elif lead == 0xF0:
        size, low, high = 4, 0x90, 0xBF
    elif 0xF1 <= lead <= 0xF3:
        size, low, high = 4, 0x80, 0xBF
    elif lead == 0xF4:
        size, low, high = 4, 0x80, 0x8F  # nothing above U+10FFFF
    else:
        return 0
    if position + size > length:
        return 0
    second = data[position + 1]
    if second < low or second > high:
        return 0
    for offset in range(2, size):
        byte = data[position + offset]
        if byte < 0x80 or byte > 0xBF:
            return 0
    return size


@kernel
def read_string(data, position):
    """Validate the string whose opening quote is at ``position``:
    ``(status, position after the closing quote or of the problem)``."""
    length = data.size
    position += 1
    while True:
        while position < length:  # the common case: printable ASCII
            byte = data[position]
            if byte in (QUOTE, BACKSLASH) or byte < 32 or byte >= 128:
                break
            position += 1
        if position >= length:
            return status.END_OF_DATA, length
        byte = data[position]
        if byte == QUOTE:
            return status.OK, position + 1
        if byte == BACKSLASH:
            code, position = _read_escape(data, position)
            if code != status.OK:
                return code, position
        elif byte < 32:
            return status.CONTROL_CHARACTER, position
        else:
            size = _utf8_length(data, position)
            if size == 0:
                return status.INVALID_UTF8, position
            position += size


@kernel
def string_end(data, position):
    """Position after the closing quote of the (already validated) string at ``position``."""
    position += 1
    while True:
        byte = data[position]
        if byte == QUOTE:
            return position + 1
        position += 2 if byte == BACKSLASH else 1


@kernel
def read_word(data, position, word, problem):
    """Check the literal ``word`` (a uint8 array) at ``position``: ``(status, next)``."""
    length = data.size
    for offset in range(word.size):
        if position + offset >= length:
            return status.END_OF_DATA, length
        if data[position + offset] != word[offset]:
            return problem, position
    return status.OK, position + word.size


@kernel
def locate(data, position):
    """``(line, column, character)`` of byte ``position``, counted in characters (as Python's
    ``JSONDecodeError`` does): UTF-8 continuation bytes do not start a character."""
    line = 1
    character = 0
    line_start = 0  # character index just after the last line feed
    for index in range(min(position, data.size)):
        byte = data[index]
        if byte & 0xC0 != 0x80:
            character += 1
        if byte == 10:
            line += 1
            line_start = character
    return line, character - line_start + 1, character
