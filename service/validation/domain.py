"""Stage 3, the domain: value checks shared by the losses, each naming the first offender.

Messages say which entry, its value, and what was expected:
``predictions[3][1] = 1.3 is outside [0, 1]; ...``.
"""

from __future__ import annotations

import numpy as np

from service.validation.errors import DomainError, body_loc, index_text

FROM_LOGITS_HINT = (
    '; predictions are read as probabilities: send "params": {"from_logits": true} to pass '
    "logits instead"
)


def first_index(bad: np.ndarray) -> tuple[int, ...]:
    """The index of the first True entry of a boolean array (C order)."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


def fail_at(array: np.ndarray, field: str, bad: np.ndarray, expectation: str) -> None:
    """Raise a DomainError for the first True of ``bad``, if any."""
    if bad.any():
        index = first_index(bad)
        raise DomainError(
            body_loc(field, *index),
            f"{index_text(field, index)} = {array[index]:g} {expectation}",
        )


def require_range(array: np.ndarray, field: str, low: float, high: float, hint: str = "") -> None:
    """Every value in the closed interval [low, high]."""
    fail_at(array, field, (array < low) | (array > high), f"is outside [{low:g}, {high:g}]{hint}")


def require_above(array: np.ndarray, field: str, bound: float, loss: str, strict: bool) -> None:
    """Every value > bound (``strict``) or >= bound: the domain of a loss's formula."""
    bad = array <= bound if strict else array < bound
    relation = ">" if strict else ">="
    fail_at(
        array,
        field,
        bad,
        f"is outside the domain of {loss}: every value of {field} must be {relation} {bound:g}",
    )


def require_probabilities(array: np.ndarray, from_logits: bool) -> None:
    """Predictions in [0, 1] unless they are logits; the message suggests ``from_logits``."""
    if not from_logits:
        require_range(array, "predictions", 0.0, 1.0, FROM_LOGITS_HINT)


def require_sign_labels(targets: np.ndarray) -> None:
    """Hinge targets: all in {0, 1} or all in {-1, 1}."""
    zero_one = (targets == 0.0) | (targets == 1.0)
    if zero_one.all():
        return
    plus_minus = (targets == -1.0) | (targets == 1.0)
    if plus_minus.all():
        return
    outside = ~(zero_one | plus_minus)
    if outside.any():
        fail_at(
            targets, "targets", outside, "is not a label: hinge targets are in {0, 1} or {-1, 1}"
        )
    first_zero = first_index(targets == 0.0)
    first_minus = first_index(targets == -1.0)
    raise DomainError(
        body_loc("targets"),
        f"targets mix the {{0, 1}} and {{-1, 1}} conventions ({index_text('targets', first_zero)}"
        f" = 0 and {index_text('targets', first_minus)} = -1); use one of them",
    )
