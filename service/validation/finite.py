"""Where an array stops being finite: shared by input checks and result checks."""

from __future__ import annotations

import math

import numpy as np

from service.validation.errors import DomainError, body_loc, index_text

#: Arrays of a request have at most this many dimensions.
MAX_DIMENSIONS = 32


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


def require_finite(array: np.ndarray, field: str) -> None:
    """DomainError (422) naming the first NaN or infinite entry of the request field ``field``."""
    first = first_non_finite(array)
    if first is None:
        return
    index = np.unravel_index(first, array.shape)
    value = array[index]
    kind = "NaN" if np.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    raise DomainError(
        body_loc(field, *map(int, index)),
        f"{index_text(field, index)} is {kind}; every value must be a finite number",
    )
