"""Unsigned big integers for the exact comparison of :mod:`.decimal_fallback`, in numba.

A number is a uint64 array of 32-bit limbs, least significant first, with its used length
kept beside it (``size``): 32-bit limbs so that a limb times a 32-bit factor plus a carry fits
in 64 bits. Only what the comparison needs: multiply by a small factor, by a power of five,
shift left, compare. ``LIMBS`` bounds every number that comparison makes (see there).
"""

import numpy as np

from service.api.jsonread.jit import kernel

LIMBS = 320  # 10240 bits
LIMB_BITS = np.uint64(32)
LIMB_MASK = np.uint64(0xFFFFFFFF)
FIVE_13 = np.uint64(1_220_703_125)  # the largest power of five below 2**32


@kernel
def multiply_small(limbs, size, factor, addend):
    """``limbs * factor + addend`` in place (factor, addend < 2**32); returns the new size."""
    carry = np.uint64(addend)
    for index in range(size):
        product = limbs[index] * factor + carry
        limbs[index] = product & LIMB_MASK
        carry = product >> LIMB_BITS
    if carry > 0:
        limbs[size] = carry
        size += 1
    return size


@kernel
def multiply_power_of_five(limbs, size, power):
    """``limbs * 5**power`` in place; returns the new size."""
    while power >= 13:
        size = multiply_small(limbs, size, FIVE_13, 0)
        power -= 13
    factor = np.uint64(1)
    for _ in range(power):
        factor *= np.uint64(5)
    if factor > 1:
        size = multiply_small(limbs, size, factor, 0)
    return size


@kernel
def shift_left(limbs, size, bits):
    """``limbs << bits`` in place; returns the new size."""
    if size == 0:
        return 0
    whole = bits // 32
    part = np.uint64(bits % 32)
    if part > 0:
        carry = np.uint64(0)
        for index in range(size):
            value = (limbs[index] << part) | carry
            carry = limbs[index] >> (LIMB_BITS - part)
            limbs[index] = value & LIMB_MASK
        if carry > 0:
            limbs[size] = carry
            size += 1
    if whole > 0:
        for index in range(size - 1, -1, -1):
            limbs[index + whole] = limbs[index]
        limbs[:whole] = 0
        size += whole
    return size


@kernel
def compare(first, first_size, second, second_size):
    """-1, 0 or 1 as ``first`` is below, equal to or above ``second`` (no leading zero limbs)."""
    if first_size != second_size:
        return -1 if first_size < second_size else 1
    for index in range(first_size - 1, -1, -1):
        if first[index] != second[index]:
            return -1 if first[index] < second[index] else 1
    return 0


@kernel
def from_small(limbs, value):
    """Set ``limbs`` to ``value`` (< 2**64); returns the size."""
    limbs[:] = 0
    size = 0
    while value > 0:
        limbs[size] = value & LIMB_MASK
        value = value >> LIMB_BITS
        size += 1
    return size
