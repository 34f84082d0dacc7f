"""Where an array stops being finite: shared by input checks and result checks."""

from __future__ import annotations

import math

import numpy as np


def first_non_finite(array: np.ndarray) -> int | None:
    """The flat index of the first NaN or infinite entry, or None when every entry is finite.

    A finite sum proves every entry finite (one NaN or infinity makes the sum NaN or infinite),
    and costs one pass with no temporary; the exact scan runs only when the sum is not finite.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # a sum of finite values may overflow
        total = array.sum()
    if math.isfinite(total):
        return None
    finite = np.isfinite(array)
    return None if finite.all() else int(np.argmin(finite))  # None: the sum overflowed
