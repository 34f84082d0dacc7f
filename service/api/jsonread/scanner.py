"""The one validating pass over a body: syntax, UTF-8, depth, and every number converted.

:func:`scan` reads the whole body once, in numba without the GIL, and leaves behind:

- ``tape``: every number token's double, in document order (``NaN``/``Infinity`` tokens
  included). An array's numbers are a contiguous run of it, so an array of numbers needs no
  second parse: its float64 data is a slice of the tape.
- ``members``: for each member of a top-level object, where its key starts, where its value
  ends and the tape index of its value's first number (one contiguous row each:
  ``members[KEY_START]``, ``members[VALUE_END]``, ``members[TAPE_START]``; the value starts a
  few bytes after the key, see :func:`.walk.value_start`).
- ``records``: the shapes of large numeric arrays near the top (:mod:`.shapes`).
- ``summary``: status, error position, counts, the top-level value's span and kind, flags.

The outputs are allocated by the caller at their worst-case size (a number takes at least two
bytes of body, a member five); pages never written are never touched, so they cost address
space, not memory.

Inside arrays, runs of plain numbers separated by commas are read by :func:`_number_run`
without going through the state machine: that is where large bodies spend their time.

``STDLIB_SEMANTICS`` is set when orjson would refuse the body but Python's ``json`` accepts it
(a UTF-8 byte order mark, ``NaN``/``Infinity``/``-Infinity``, a number that rounds to an
infinite double): the service used to re-read such bodies with ``json.loads``, whose integers
over 18 characters become floats, and :mod:`.build` keeps that behaviour for them.
"""

import numpy as np

from service.api.jsonread import shapes, status
from service.api.jsonread.bits import bits_to_float
from service.api.jsonread.jit import inline_kernel, kernel
from service.api.jsonread.numbers import INFINITY_BITS, NAN_BITS, SIGN_BIT, read_number
from service.api.jsonread.text import is_blank, read_string, read_word, skip_whitespace

# summary slots
STATUS, ERROR_AT, TAPE_COUNT, MEMBER_COUNT, RECORD_COUNT, ROOT_START, ROOT_END = range(7)
ROOT_KIND, FLAGS = 7, 8
SUMMARY_SIZE = 9
# members rows
KEY_START, VALUE_END, TAPE_START = range(3)
MEMBER_COLUMNS = 3  # rows, in fact: one per field, each contiguous
# flags
STDLIB_SEMANTICS = 1
# kinds (the first byte of a value says which)
OBJECT, ARRAY, STRING, NUMBER, TRUE, FALSE, NULL = range(7)
# what the parser expects next
_VALUE, _KEY, _AFTER_VALUE = range(3)

OPEN_OBJECT, CLOSE_OBJECT, OPEN_ARRAY, CLOSE_ARRAY = 123, 125, 91, 93
COMMA, COLON, QUOTE, MINUS = 44, 58, 34, 45
WORD_TRUE = np.frombuffer(b"true", np.uint8).copy()
WORD_FALSE = np.frombuffer(b"false", np.uint8).copy()
WORD_NULL = np.frombuffer(b"null", np.uint8).copy()
WORD_NAN = np.frombuffer(b"NaN", np.uint8).copy()
WORD_INFINITY = np.frombuffer(b"Infinity", np.uint8).copy()


def tape_capacity(size: int) -> int:
    """Most number tokens a body of ``size`` bytes can hold (one digit and one separator)."""
    return size // 2 + 1


def member_capacity(size: int) -> int:
    """Most members a top-level object of ``size`` bytes can hold (``"":0,`` is five)."""
    return size // 5 + 1


@kernel
def kind_of(byte):
    """The kind of the value whose first byte is ``byte`` (any valid value start)."""
    if byte == OPEN_OBJECT:
        return OBJECT
    if byte == OPEN_ARRAY:
        return ARRAY
    if byte == QUOTE:
        return STRING
    if byte == 116:
        return TRUE
    if byte == 102:
        return FALSE
    if byte == 110:
        return NULL
    return NUMBER


@kernel
def _fail(summary, code, position):
    summary[STATUS] = code
    summary[ERROR_AT] = position


@kernel
def _read_scalar(data, position, tape, tape_count, summary):
    """A non-container value at ``position``: ``(status, end, tape_count, is_number)``.
    Numbers (and the NaN/Infinity extensions) go to the tape; the extensions flag stdlib
    semantics."""
    byte = data[position]
    if byte == QUOTE:
        code, end = read_string(data, position)
        return code, end, tape_count, False
    if byte == MINUS or 48 <= byte <= 57:
        if byte == MINUS and position + 1 < data.size and data[position + 1] == 73:
            code, end = read_word(data, position + 1, WORD_INFINITY, status.NO_DIGIT_AFTER_SIGN)
            bits = INFINITY_BITS | SIGN_BIT
        else:
            code, end, bits, _ = read_number(data, position)
        if code == status.OK and (bits & ~SIGN_BIT) == INFINITY_BITS:
            summary[FLAGS] |= STDLIB_SEMANTICS  # -Infinity, or a number orjson finds too large
        if code == status.OK:
            tape[tape_count] = bits_to_float(bits)
            tape_count += 1
        return code, end, tape_count, True
    if byte == 78 or byte == 73:  # 'N' 'I': Python's json extensions
        word = WORD_NAN if byte == 78 else WORD_INFINITY
        code, end = read_word(data, position, word, status.EXPECTED_VALUE)
        if code == status.OK:
            summary[FLAGS] |= STDLIB_SEMANTICS
            tape[tape_count] = bits_to_float(NAN_BITS if byte == 78 else INFINITY_BITS)
            tape_count += 1
        return code, end, tape_count, True
    if byte == 116:
        code, end = read_word(data, position, WORD_TRUE, status.INVALID_TRUE)
    elif byte == 102:
        code, end = read_word(data, position, WORD_FALSE, status.INVALID_FALSE)
    elif byte == 110:
        code, end = read_word(data, position, WORD_NULL, status.INVALID_NULL)
    else:
        code, end = status.EXPECTED_VALUE, position
    return code, end, tape_count, False


@inline_kernel
def _starts_plain_number(data, position):
    """A digit, or '-' and a digit: a number :func:`read_number` reads (not -Infinity)."""
    byte = data[position]
    if 48 <= byte <= 57:
        return True
    return byte == MINUS and position + 1 < data.size and 48 <= data[position + 1] <= 57


@inline_kernel
def _number_run(data, position, tape, tape_count, summary):
    """Numbers separated by commas inside an array, the common case, without going through
    the general state machine: ``(status, position, tape_count, numbers, comma_at)``.
    Stops after a number that is not followed by a comma and another plain number;
    ``comma_at`` >= 0 says it stopped after that comma."""
    length = data.size
    numbers = 0
    while True:
        code, position, bits, _ = read_number(data, position)
        if code != status.OK:
            return code, position, tape_count, numbers, -1
        if (bits & ~SIGN_BIT) == INFINITY_BITS:
            summary[FLAGS] |= STDLIB_SEMANTICS
        tape[tape_count] = bits_to_float(bits)
        tape_count += 1
        numbers += 1
        if position >= length or data[position] != COMMA:
            position = skip_whitespace(data, position)
            if position >= length or data[position] != COMMA:
                return status.OK, position, tape_count, numbers, -1
        comma = position
        position = skip_whitespace(data, position + 1)
        if position >= length or not _starts_plain_number(data, position):
            return status.OK, position, tape_count, numbers, comma


@kernel
def scan(data, tape, members, records, summary, record_bytes):
    """Validate ``data`` (the body's bytes); fill ``tape``, ``members``, ``records`` (arrays
    of at least ``record_bytes`` bytes, see :mod:`.shapes`) and ``summary``."""
    length = data.size
    summary[:] = 0
    summary[ROOT_KIND] = -1
    if is_blank(data):
        _fail(summary, status.EMPTY, 0)
        return
    position = 0
    if length >= 3 and data[0] == 0xEF and data[1] == 0xBB and data[2] == 0xBF:
        position = 3  # json.loads reads a UTF-8 byte order mark; orjson does not
        summary[FLAGS] |= STDLIB_SEMANTICS
    stack = np.empty(status.MAX_DEPTH, np.uint8)
    levels = np.empty((status.MAX_DEPTH, shapes.LEVEL_COLUMNS), np.int64)
    depth = 0
    tape_count = 0
    member_count = 0
    record_count = 0
    root_is_object = False
    expecting = _VALUE
    comma_at = -1  # position of the comma just read, for "trailing comma"
    while True:
        position = skip_whitespace(data, position)
        if position >= length:
            if depth == 0 and expecting == _AFTER_VALUE:
                break
            _fail(summary, status.END_OF_DATA, length)
            return
        byte = data[position]
        if expecting == _KEY:
            if byte != QUOTE:
                trailing = comma_at >= 0 and byte == CLOSE_OBJECT
                code = status.TRAILING_COMMA if trailing else status.EXPECTED_KEY
                _fail(summary, code, comma_at if trailing else position)
                return
            code, end = read_string(data, position)
            if code != status.OK:
                _fail(summary, code, end)
                return
            if depth == 1 and root_is_object:
                members[KEY_START, member_count] = position
                member_count += 1
            position = skip_whitespace(data, end)
            if position >= length:
                _fail(summary, status.END_OF_DATA, length)
                return
            if data[position] != COLON:
                _fail(summary, status.EXPECTED_COLON, position)
                return
            position += 1
            expecting = _VALUE
            comma_at = -1
            continue
        if expecting == _AFTER_VALUE:
            if depth == 0:
                _fail(summary, status.TRAILING_CONTENT, position)
                return
            top = stack[depth - 1]
            if byte == COMMA:
                comma_at = position
                position += 1
                expecting = _KEY if top == OPEN_OBJECT else _VALUE
                continue
            if byte != top + 2:  # ']' is '[' + 2 and '}' is '{' + 2
                in_array = top == OPEN_ARRAY
                code = (
                    status.EXPECTED_COMMA_IN_ARRAY if in_array else status.EXPECTED_COMMA_IN_OBJECT
                )
                _fail(summary, code, position)
                return
            depth -= 1
            position += 1
            if top == OPEN_ARRAY:
                parent_is_array = depth > 0 and stack[depth - 1] == OPEN_ARRAY
                record_count = shapes.close_array(
                    levels, depth, position, parent_is_array, records, record_count, record_bytes
                )
        else:  # a value
            in_array = depth > 0 and stack[depth - 1] == OPEN_ARRAY
            if depth == 0:
                summary[ROOT_START] = position
                summary[ROOT_KIND] = kind_of(byte)
                root_is_object = byte == OPEN_OBJECT
            elif depth == 1 and root_is_object:
                members[TAPE_START, member_count - 1] = tape_count
            if byte in (OPEN_OBJECT, OPEN_ARRAY):
                if depth >= status.MAX_DEPTH:
                    _fail(summary, status.TOO_DEEP, position)
                    return
                if in_array:
                    if byte == OPEN_ARRAY:
                        shapes.add_array_entry(levels, depth - 1)
                    else:
                        shapes.add_entries(levels, depth - 1, 1, False)
                stack[depth] = byte
                if byte == OPEN_ARRAY:
                    shapes.open_array(levels, depth, position)
                depth += 1
                position = skip_whitespace(data, position + 1)
                if position >= length:
                    _fail(summary, status.END_OF_DATA, length)
                    return
                if data[position] != byte + 2:  # not empty
                    expecting = _KEY if byte == OPEN_OBJECT else _VALUE
                    comma_at = -1
                    continue
                depth -= 1
                position += 1
                if byte == OPEN_ARRAY:
                    record_count = shapes.close_array(
                        levels, depth, position, in_array, records, record_count, record_bytes
                    )
            elif in_array and _starts_plain_number(data, position):
                code, position, tape_count, numbers, comma = _number_run(
                    data, position, tape, tape_count, summary
                )
                if code != status.OK:
                    _fail(summary, code, position)
                    return
                shapes.add_entries(levels, depth - 1, numbers, True)
                if comma >= 0:  # another entry follows that is not a plain number
                    comma_at = comma
                    expecting = _VALUE
                    continue
            else:
                if byte == CLOSE_ARRAY and comma_at >= 0:
                    _fail(summary, status.TRAILING_COMMA, comma_at)
                    return
                code, position, tape_count, is_number = _read_scalar(
                    data, position, tape, tape_count, summary
                )
                if code != status.OK:
                    _fail(summary, code, position)
                    return
                if in_array:
                    shapes.add_entries(levels, depth - 1, 1, is_number)
        # A value just ended at ``position``.
        expecting = _AFTER_VALUE
        if depth == 0:
            summary[ROOT_END] = position
        elif depth == 1 and root_is_object:
            members[VALUE_END, member_count - 1] = position
    summary[TAPE_COUNT] = tape_count
    summary[MEMBER_COUNT] = member_count
    summary[RECORD_COUNT] = record_count
