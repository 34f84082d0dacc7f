r"""The exact, slow path of decimal -> double: compare the decimal with a midpoint.

Used for the rare numbers the fast paths cannot decide: more than 19 significant digits whose
19-digit truncations ``w`` and ``w + 1`` round differently, and values within a hair of a
rounding midpoint. The fast path hands over a candidate double ``c`` within one step of the
answer, so the answer is ``c - 1``, ``c`` or ``c + 1`` (in steps between neighbouring doubles),
and two exact comparisons of the decimal :math:`D = W \cdot 10^{q}` with the midpoints
:math:`M = (2s + 1) \cdot 2^{e-1}` around ``c`` (:math:`c = s \cdot 2^e`) settle it, ties to
even. This is the digit comparison of Lemire's paper (section 11) done with plain big integers
(:mod:`.bignum`): multiply the side with the negative power by :math:`5^{|q|}`, shift the other
by the difference of the powers of two, compare.

Only the first ``MAX_DIGITS`` significant digits become ``W``; a non-zero digit beyond them
makes :math:`D` larger than any midpoint equal to the truncated value. That is exact because a
midpoint between two doubles has fewer significant digits (the longest, near
:math:`2^{-1074}`, has 767), so it cannot lie strictly inside the truncated interval.
The cost grows with the number's length and exponent (a 40-digit number near 1e-300: about two
microseconds), never with a fixed buffer.
"""

import numpy as np

from service.api.jsonread import bignum
from service.api.jsonread.jit import kernel

MAX_DIGITS = 800
INFINITY_BITS = np.uint64(0x7FF0000000000000)
MANTISSA_MASK = np.uint64((1 << 52) - 1)
HIDDEN_BIT = np.uint64(1 << 52)
CHUNK = 9  # decimal digits added to the big integer at once (10**9 < 2**32)


@kernel
def _read_digits(data, start, end, limbs):
    """``W`` (first MAX_DIGITS significant digits) into ``limbs``: ``(size, exponent,
    truncated)`` with the number ``W * 10**exponent`` (plus more if ``truncated``)."""
    position = start + 1 if data[start] == 45 else start
    size = 0
    count = 0
    exponent = 0
    truncated = False
    seen_point = False
    chunk = 0
    chunk_digits = 0
    while position < end:
        byte = data[position]
        position += 1
        if byte == 46:
            seen_point = True
            continue
        if byte < 48 or byte > 57:
            break  # the exponent's 'e' or 'E'
        digit = byte - 48
        if count == 0 and digit == 0:
            if seen_point:
                exponent -= 1  # a leading zero after the point
            continue
        if count == MAX_DIGITS:
            truncated = truncated or digit != 0
            if not seen_point:
                exponent += 1
            continue
        count += 1
        if seen_point:
            exponent -= 1
        chunk = chunk * 10 + digit
        chunk_digits += 1
        if chunk_digits == CHUNK:
            size = bignum.multiply_small(limbs, size, np.uint64(10**CHUNK), chunk)
            chunk, chunk_digits = 0, 0
    if chunk_digits > 0:
        size = bignum.multiply_small(limbs, size, np.uint64(10**chunk_digits), chunk)
    if position < end:  # the exponent (validated): sign and digits
        negative = data[position] == 45
        if data[position] == 45 or data[position] == 43:
            position += 1
        written = 0
        while position < end:
            if written < 1_000_000_000:
                written = written * 10 + (data[position] - 48)
            position += 1
        exponent += -written if negative else written
    return size, exponent, truncated


@kernel
def _compare_with_midpoint(digits, digits_size, exponent, truncated, bits, work, other):
    """-1, 0 or 1 as ``W * 10**exponent`` is below, at or above the midpoint between the
    double ``bits`` (positive, may be infinity's bits as "the next after the largest") and
    the next double up."""
    biased = np.int64(bits >> np.uint64(52))
    if biased == 0:
        significand = bits & MANTISSA_MASK
        power = np.int64(-1074)
    else:
        significand = (bits & MANTISSA_MASK) | HIDDEN_BIT
        power = biased - 1075
    # midpoint = (2 * significand + 1) * 2**(power - 1)
    work[:digits_size] = digits[:digits_size]
    work[digits_size:] = 0
    decimal_size = digits_size
    midpoint_size = bignum.from_small(other, significand * np.uint64(2) + np.uint64(1))
    if exponent >= 0:
        decimal_size = bignum.multiply_power_of_five(work, decimal_size, exponent)
    else:
        midpoint_size = bignum.multiply_power_of_five(other, midpoint_size, -exponent)
    # compare decimal * 2**exponent with midpoint * 2**(power - 1)
    difference = exponent - (power - 1)
    if difference >= 0:
        decimal_size = bignum.shift_left(work, decimal_size, difference)
    else:
        midpoint_size = bignum.shift_left(other, midpoint_size, -difference)
    order = bignum.compare(work, decimal_size, other, midpoint_size)
    if order == 0 and truncated:
        return 1
    return order


@kernel
def decimal_bits(data, start, end, candidate):
    """IEEE 754 bits (sign excluded) of the double nearest the number text ``data[start:end]``
    given ``candidate``, a double at most one step from it."""
    digits = np.zeros(bignum.LIMBS, np.uint64)
    work = np.zeros(bignum.LIMBS, np.uint64)
    other = np.zeros(bignum.LIMBS, np.uint64)
    size, exponent, truncated = _read_digits(data, start, end, digits)
    if size == 0:
        return np.uint64(0)
    if candidate > np.uint64(0):  # is the answer one step down?
        below = candidate - np.uint64(1)
        order = _compare_with_midpoint(digits, size, exponent, truncated, below, work, other)
        if order < 0 or (order == 0 and (below & np.uint64(1)) == 0):
            return below
    if candidate >= INFINITY_BITS:
        return INFINITY_BITS
    order = _compare_with_midpoint(digits, size, exponent, truncated, candidate, work, other)
    if order > 0 or (order == 0 and (candidate & np.uint64(1)) == 1):
        return candidate + np.uint64(1)  # the next double (from the largest: infinity)
    return candidate
