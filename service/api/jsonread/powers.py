r"""Exact tables for decimal -> double conversion, computed here with Python integers.

Eisel-Lemire (Lemire, "Number Parsing at a Gigabyte per Second", Software: Practice and
Experience 51(8), 2021) needs, for every decimal exponent :math:`q` in
``[SMALLEST_EXPONENT, LARGEST_EXPONENT]``, the leading 128 bits of :math:`5^q`:

.. math::  5^q = (T_q + \epsilon) \, 2^{E_q}, \qquad 2^{127} \le T_q < 2^{128},\; 0 \le \epsilon < 1

``T_q`` is truncated (never rounded up), so the product with a mantissa under-estimates the
exact product by less than one unit of the table's last bit; :mod:`.eisel_lemire` relies on
exactly that bound when it decides whether it may round. Nothing here is copied from another
table: every entry is derived from integer arithmetic and is checked by the tests against
``fractions.Fraction``.
"""

from __future__ import annotations

import numpy as np

SMALLEST_EXPONENT = -342  # w * 10**q with w < 2**64 and q below this is below 2**-1075: zero
LARGEST_EXPONENT = 308  # w >= 1 and q above this is above the largest double: infinity
LOW_WORD = (1 << 64) - 1


def truncated_power_of_five(q: int) -> tuple[int, int]:
    """``(T_q, E_q)``: the 128 leading bits of ``5**q`` and the power of two they stand for."""
    if q >= 0:
        exact = 5**q
        shift = exact.bit_length() - 128  # negative: the table entry is 5**q shifted left
        mantissa = exact >> shift if shift >= 0 else exact << -shift
        return mantissa, shift
    divisor = 5**-q
    # 2**k / 5**-q with k chosen so the quotient has exactly 128 bits; floor = truncation.
    k = divisor.bit_length() + 127
    mantissa = (1 << k) // divisor
    if mantissa.bit_length() == 129:  # cannot happen (5**-q is never a power of two)
        raise AssertionError(q)
    return mantissa, -k


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = LARGEST_EXPONENT - SMALLEST_EXPONENT + 1
    high = np.empty(count, np.uint64)
    low = np.empty(count, np.uint64)
    exponent = np.empty(count, np.int64)
    for index in range(count):
        mantissa, power = truncated_power_of_five(SMALLEST_EXPONENT + index)
        high[index] = mantissa >> 64
        low[index] = mantissa & LOW_WORD
        exponent[index] = power
    return high, low, exponent


#: ``FIVE_HIGH[q - SMALLEST_EXPONENT]``, ``FIVE_LOW[...]``: the two words of ``T_q``;
#: ``FIVE_EXPONENT[...]``: ``E_q``.
FIVE_HIGH, FIVE_LOW, FIVE_EXPONENT = _tables()

#: Powers of ten that are exact doubles (10**22 < 2**53 * 5**22 ... every one up to 1e22).
EXACT_POWERS_OF_TEN = np.array([10.0**k for k in range(23)], dtype=np.float64)

#: Shifts of the decimal fallback: ``DECIMAL_SHIFTS[i]`` = floor(i log2 10) (at least 1, at
#: most 60), the largest binary shift that moves a value below ``10**i`` to below 1.
DECIMAL_SHIFTS = np.array(
    [1] + [min(60, (10**i).bit_length() - 1) for i in range(1, 19)], dtype=np.int64
)
