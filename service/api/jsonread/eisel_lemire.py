r"""The fast paths of decimal -> double: Clinger's exact case and Eisel-Lemire.

Both take the decimal as :math:`w \cdot 10^q` (``w`` the first 19 significant digits as a
uint64, ``q`` the decimal exponent) and return the IEEE 754 bits of the correctly rounded
(round-half-even) double of magnitude :math:`w \cdot 10^q` and whether they are sure; when
not, the bits are those of a double next to the answer and the caller lets the exact
comparison decide (:mod:`.decimal_fallback`).

Eisel-Lemire (D. Lemire, "Number Parsing at a Gigabyte per Second", Softw. Pract. Exp. 51(8),
2021, sections 5-6). With :math:`w_n = w \cdot 2^{z}` normalised (top bit set) and the
truncated table :math:`5^q = (T_q + \epsilon) 2^{E_q}`, :math:`0 \le \epsilon < 1`
(:mod:`.powers`), let :math:`U = \lfloor w_n T_q / 2^{64} \rfloor` (128 bits, two words). Then

.. math::  w \cdot 10^q = V \cdot 2^{64 + E_q + q - z}, \qquad U \le V < U + 2,

so the double is :math:`V / 2^t` rounded to an integer, for the ``t`` that leaves 53
significant bits (more for subnormals). Rounding can only go wrong when a rounding midpoint
:math:`h = 2^{t-1} \pmod{2^t}` lies in :math:`[U, U + 2)`; the code refuses a window a little
wider than that and lets the fallback decide. The 128-bit products are emulated with 32-bit
halves in uint64 arithmetic (every constant below is a ``np.uint64``: numba turns mixed
signed/unsigned arithmetic into float64). When :math:`0 \le q \le 27` the table entry is
exact (:math:`5^{27} < 2^{64}`), :math:`V = U`, and an exact tie rounds to even here.

The decisions are the author's own derivation of the bound above, not a copy of any library;
the tests compare millions of conversions, hard cases included, with ``float(text)``.
"""

import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros

from service.api.jsonread.bits import float_to_bits
from service.api.jsonread.powers import (
    EXACT_POWERS_OF_TEN,
    FIVE_EXPONENT,
    FIVE_HIGH,
    FIVE_LOW,
    LARGEST_EXPONENT,
    SMALLEST_EXPONENT,
)
from service.kernels.jit import kernel

UNDECIDED = np.uint64(0xFFFFFFFFFFFFFFFF)  # not a double any number can round to (a NaN)
INFINITY_BITS = np.uint64(0x7FF0000000000000)
ZERO = np.uint64(0)
ONE = np.uint64(1)
ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
LOW_HALF = np.uint64(0xFFFFFFFF)
HALF_WIDTH = np.uint64(32)
TOP_BIT = np.uint64(63)
MANTISSA_BITS = np.uint64(52)
LARGEST_EXACT_MANTISSA = np.uint64(1 << 53)  # every integer up to 2**53 is a double
EXPONENT_BIAS_SHIFT = 1139  # 1075 (bias + 52) + 64 (U is the product's top 128 bits)


@kernel
def multiply_full(a, b):
    """The 128-bit product of two uint64, as (high word, low word), from 32-bit halves."""
    a_low = a & LOW_HALF
    a_high = a >> HALF_WIDTH
    b_low = b & LOW_HALF
    b_high = b >> HALF_WIDTH
    low_low = a_low * b_low
    low_high = a_low * b_high
    high_low = a_high * b_low
    high_high = a_high * b_high
    # Sum of three numbers below 2**32 each: no overflow.
    middle = (low_low >> HALF_WIDTH) + (low_high & LOW_HALF) + (high_low & LOW_HALF)
    low = (middle << HALF_WIDTH) | (low_low & LOW_HALF)
    high = high_high + (low_high >> HALF_WIDTH) + (high_low >> HALF_WIDTH) + (middle >> HALF_WIDTH)
    return high, low


@kernel
def clinger(mantissa, exponent):
    """Bits of ``mantissa * 10**exponent`` when both are exact doubles (one rounding), else
    UNDECIDED: ``mantissa <= 2**53`` and ``|exponent| <= 22``."""
    if mantissa > LARGEST_EXACT_MANTISSA or exponent < -22 or exponent > 22:
        return UNDECIDED
    value = float(mantissa)
    if exponent >= 0:
        value = value * EXACT_POWERS_OF_TEN[exponent]
    else:
        value = value / EXACT_POWERS_OF_TEN[-exponent]
    return float_to_bits(value)


@kernel
def _rounding_position(high, base_exponent):
    """``(t, biased_exponent)``: how many low bits of U the double drops, and its exponent
    field if normal (<= 0 means subnormal, where t grows so the significand shrinks)."""
    upper = np.int64(high >> TOP_BIT)
    shift = 74 + upper  # U in [2**126, 2**128): U >> shift has 53 significant bits
    biased = shift + base_exponent
    if biased <= 0:
        shift = shift + 1 - biased
    return shift, biased


@kernel
def eisel_lemire(mantissa, exponent):
    """``(bits, decided)``: the double nearest ``mantissa * 10**exponent`` (mantissa: uint64
    > 0), or, when the truncated product leaves the rounding in doubt, ``decided`` False and
    the double just below the doubtful midpoint (the answer is it or the next one up)."""
    if exponent < SMALLEST_EXPONENT:
        return ZERO, True
    if exponent > LARGEST_EXPONENT:
        return INFINITY_BITS, True
    index = exponent - SMALLEST_EXPONENT
    # (an intrinsic: numba passes its typing context, which the type checker cannot see)
    zeros: int = leading_zeros(mantissa)  # type: ignore[call-arg]
    normalised = mantissa << np.uint64(zeros)
    high, low = multiply_full(normalised, FIVE_HIGH[index])
    exact = 0 <= exponent <= 27  # T_q is 5**q itself and its low word is zero
    base_exponent = EXPONENT_BIAS_SHIFT + FIVE_EXPONENT[index] + exponent - np.int64(zeros)
    shift, biased = _rounding_position(high, base_exponent)
    if shift > 128:  # far below the smallest subnormal (V < 2**128 + 2 <= the midpoint)
        return ZERO, not (high == ALL_ONES and low >= ALL_ONES - ONE)
    if not exact and _near_midpoint(high, shift, np.uint64(2)):
        # The first product alone is U up to 2**64; the second settles the low word.
        cross_high, _ = multiply_full(normalised, FIVE_LOW[index])
        low = low + cross_high
        if low < cross_high:
            high = high + ONE
        shift, biased = _rounding_position(high, base_exponent)
        if shift > 128:
            return ZERO, True
        if _near_midpoint_exactly(high, low, shift):
            return _assemble(high, low, shift, biased, False), False
    return _assemble(high, low, shift, biased, True), True


@kernel
def _midpoint_word(shift):
    """``(mask, midpoint)``: the bits of the high word below the rounding position, and the
    midpoint 2**(shift - 1) in high-word units (shift in [74, 128])."""
    width = shift - 64
    if width >= 64:
        mask = ALL_ONES
    else:
        mask = (ONE << np.uint64(width)) - ONE
    return mask, ONE << np.uint64(width - 1)


@kernel
def _near_midpoint(high, shift, margin):
    """Whether the high word alone puts U within ``margin`` high-word units below (or at) the
    rounding midpoint: then the low word, or the table's truncation, may decide it."""
    mask, midpoint = _midpoint_word(shift)
    rest = high & mask
    return midpoint - margin <= rest <= midpoint


@kernel
def _near_midpoint_exactly(high, low, shift):
    """Whether [U, U + 2) may hold the midpoint; the window tested is [h - 2, h + 1]."""
    mask, midpoint = _midpoint_word(shift)
    rest = high & mask
    if rest == midpoint:
        return low <= ONE
    if rest == midpoint - ONE:
        return low >= ALL_ONES - ONE
    return False


@kernel
def _assemble(high, low, shift, biased, rounded):
    """Pack U >> shift rounded half to even (a tie is only possible when U is exact), or
    truncated when not ``rounded``."""
    mask, midpoint = _midpoint_word(shift)
    rest = high & mask
    if shift >= 128:
        significand = ZERO
    else:
        significand = high >> np.uint64(shift - 64)
    if rounded and (
        rest > midpoint
        or (rest == midpoint and low > ZERO)
        or (rest == midpoint and low == ZERO and (significand & ONE) == ONE)
    ):
        significand += ONE
    if biased <= 0:  # subnormal; a carry into 2**52 makes the smallest normal, as it should
        return significand
    bits = (np.uint64(biased - 1) << MANTISSA_BITS) + significand
    if bits >= INFINITY_BITS:
        return INFINITY_BITS
    return bits


@kernel
def fast_bits(mantissa, exponent):
    """``(bits, decided)`` by Clinger, else Eisel-Lemire; 0 for a zero mantissa."""
    if mantissa == ZERO:
        return ZERO, True
    bits = clinger(mantissa, exponent)
    if bits != UNDECIDED:
        return bits, True
    return eisel_lemire(mantissa, exponent)
