"""Number tokens: validated and converted to the correctly rounded double in one pass.

Grammar (RFC 8259): ``-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?``. The value is
``float(text)`` (round half to even), except that an integer literal is the double nearest the
integer, so ``-0`` is ``+0.0`` as Python's ``int`` makes it (``-0.0`` and ``-0e0`` stay
``-0.0``). The first 19 significant digits become the uint64 mantissa ``w`` and the rest only
shift the exponent ``q``; :mod:`.eisel_lemire` converts ``w * 10**q``. When digits were dropped,
the value lies in ``[w, w + 1) * 10**q``, so if both ends round to the same double the number
does too (Lemire 2021, section 11); otherwise :mod:`.decimal_fallback` decides, starting from
the double the fast path found for ``w``.
"""

import numpy as np

from service.api.jsonread import status
from service.api.jsonread.decimal_fallback import decimal_bits
from service.api.jsonread.eisel_lemire import fast_bits
from service.api.jsonread.jit import inline_kernel, kernel

SIGN_BIT = np.uint64(1 << 63)
INFINITY_BITS = np.uint64(0x7FF0000000000000)
NAN_BITS = np.uint64(0x7FF8000000000000)
MAX_SIGNIFICANT = 19  # 10**19 - 1 < 2**64
EXPONENT_CAP = 1_000_000_000  # beyond this any mantissa is 0 or infinite; no overflow below
ASCII_ZEROS = np.uint64(0x3030303030303030)
HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
SIXES = np.uint64(0x0606060606060606)
THREES = np.uint64(0x3333333333333333)
EVERY_FOURTH_BYTE = np.uint64(0x000000FF000000FF)
PAIR_WEIGHTS_EVEN = np.uint64(100 + (1_000_000 << 32))
PAIR_WEIGHTS_ODD = np.uint64(1 + (10_000 << 32))
HUNDRED_MILLION = np.uint64(100_000_000)


@inline_kernel
def _eight_bytes(data, position):
    """Bytes ``position .. position + 7`` as a little-endian uint64 (LLVM makes this one
    unaligned load)."""
    word = np.uint64(0)
    for offset in range(8):
        word |= np.uint64(data[position + offset]) << np.uint64(8 * offset)
    return word


@inline_kernel
def _all_digits(word):
    """Whether all eight bytes are ASCII digits: each is 0x30..0x39 iff its high nibble is 3
    and adding 6 does not carry into it."""
    return ((word & HIGH_NIBBLES) | (((word + SIXES) & HIGH_NIBBLES) >> np.uint64(4))) == THREES


@inline_kernel
def _eight_digits_value(word):
    """The number written by eight ASCII digits (first digit in the lowest byte): pairs of
    digits first (byte i becomes 10 d_i + d_(i+1)), then the four pairs weighted by
    10**6, 10**4, 10**2, 1 with two multiplications whose useful sums land in the top half."""
    word = word - ASCII_ZEROS
    word = word * np.uint64(10) + (word >> np.uint64(8))
    even = (word & EVERY_FOURTH_BYTE) * PAIR_WEIGHTS_EVEN
    odd = ((word >> np.uint64(16)) & EVERY_FOURTH_BYTE) * PAIR_WEIGHTS_ODD
    return (even + odd) >> np.uint64(32)


@inline_kernel
def _digits_eight_at_a_time(data, position, mantissa, significant):
    """Append whole blocks of eight digits to the mantissa while they fit in 19 digits:
    ``(position, mantissa, significant)``."""
    limit = data.size - 8
    while significant <= MAX_SIGNIFICANT - 8 and position <= limit:
        word = _eight_bytes(data, position)
        if not _all_digits(word):
            break
        mantissa = mantissa * HUNDRED_MILLION + _eight_digits_value(word)
        significant += 8
        position += 8
    return position, mantissa, significant


@kernel
def _convert(mantissa, exponent, inexact):
    """``(bits, decided)`` of the magnitude by the fast paths; when not decided, ``bits`` is
    a double at most one step from the answer (the exact comparison starts from it)."""
    if mantissa == 0:
        return np.uint64(0), True
    low, decided = fast_bits(mantissa, exponent)
    if not inexact or not decided:
        return low, decided
    high, high_decided = fast_bits(mantissa + np.uint64(1), exponent)
    # [w, w + 1) * 10**q straddles a rounding boundary unless both ends round alike.
    return low, high_decided and high == low


@inline_kernel
def read_number(data, start):
    """Validate and convert the number at ``start`` (a '-' or a digit).

    Returns ``(status, end, bits, is_integer)``: on a problem, ``end`` is where it is.
    """
    length = data.size
    position = start
    negative = data[position] == 45
    if negative:
        position += 1
        if position >= length:
            return status.END_OF_DATA, length, np.uint64(0), False
    byte = data[position]
    if byte < 48 or byte > 57:
        return status.NO_DIGIT_AFTER_SIGN, position, np.uint64(0), False
    mantissa = np.uint64(0)
    significant = 0  # digits in the mantissa
    exponent = 0  # decimal exponent of the mantissa's last digit
    inexact = False  # a non-zero digit was dropped
    if byte == 48:
        position += 1
        if position < length and 48 <= data[position] <= 57:
            return status.LEADING_ZERO, start, np.uint64(0), False
    else:
        position, mantissa, significant = _digits_eight_at_a_time(data, position, mantissa, 0)
        while position < length:
            byte = data[position]
            if byte < 48 or byte > 57:
                break
            if significant < MAX_SIGNIFICANT:
                mantissa = mantissa * np.uint64(10) + np.uint64(byte - 48)
                significant += 1
            else:
                exponent += 1
                inexact = inexact or byte != 48
            position += 1
    is_integer = True
    if position < length and data[position] == 46:  # '.'
        is_integer = False
        position += 1
        if position >= length or data[position] < 48 or data[position] > 57:
            return status.NO_DIGIT_AFTER_POINT, position, np.uint64(0), False
        if significant == 0:  # leading zeros only move the point
            while position < length and data[position] == 48:
                exponent -= 1
                position += 1
        before = position  # from here every digit is significant: eight at a time
        position, mantissa, significant = _digits_eight_at_a_time(
            data, position, mantissa, significant
        )
        exponent -= position - before
        while position < length:
            byte = data[position]
            if byte < 48 or byte > 57:
                break
            if significant == 0 and byte == 48:
                exponent -= 1  # a leading zero only moves the point
            elif significant < MAX_SIGNIFICANT:
                mantissa = mantissa * np.uint64(10) + np.uint64(byte - 48)
                significant += 1
                exponent -= 1
            else:
                inexact = inexact or byte != 48
            position += 1
    if position < length and (data[position] == 101 or data[position] == 69):  # 'e' 'E'
        is_integer = False
        position += 1
        written = 0
        if position < length and (data[position] == 45 or data[position] == 43):
            written = -1 if data[position] == 45 else 1
            position += 1
        if position >= length or data[position] < 48 or data[position] > 57:
            return status.NO_DIGIT_IN_EXPONENT, position, np.uint64(0), False
        value = 0
        while position < length:
            byte = data[position]
            if byte < 48 or byte > 57:
                break
            if value < EXPONENT_CAP:
                value = value * 10 + (byte - 48)
            position += 1
        exponent += -value if written < 0 else value
    bits, decided = _convert(mantissa, exponent, inexact)
    if not decided:
        bits = decimal_bits(data, start, position, bits)
    if negative and not (is_integer and bits == 0):
        bits |= SIGN_BIT
    return status.OK, position, bits, is_integer
