"""Where an array stops being finite: shared by input checks and result checks."""

from __future__ import annotations

import numpy as np

from service.kernels.finite import all_finite
from service.validation.errors import DomainError, body_loc, index_text

#: Arrays of a request have at most this many dimensions.
MAX_DIMENSIONS = 32


def first_non_finite(array: np.ndarray) -> int | None:
    """The flat index of the first NaN or infinite entry, or None when every entry is finite.

    One pass with no temporary and no overflow (:func:`service.kernels.finite.all_finite`);
    the exact scan runs only when some entry is not finite.
    """
    if array.dtype.kind in "biu":
        return None  # integers are finite
    flat = array.reshape(-1)
    if flat.dtype != np.float64:
        flat = flat.astype(np.float64)
    if all_finite(flat):
        return None
    return int(np.argmin(np.isfinite(flat)))


def require_finite(array: np.ndarray, field: str) -> None:
    """DomainError (422) naming the first NaN or infinite entry of the request field ``field``."""
    first = first_non_finite(array)
    if first is None:
        return
    index = tuple(int(i) for i in np.unravel_index(first, array.shape))
    value = array[index]
    kind = "NaN" if np.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    raise DomainError(
        body_loc(field, *index),
        f"{index_text(field, index)} is {kind}; every value must be a finite number",
    )
