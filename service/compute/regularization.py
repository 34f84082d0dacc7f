"""Regularization of ``POST /v1/evaluate``: ``l1 * sum|theta| + l2 * sum theta^2`` over the
parameters sent (one array, or named arrays of any shape), and its gradient per parameter
(the derivative of ``|theta|`` is 0 at 0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.validation.errors import NonFiniteResult

Parameters = np.ndarray | dict[str, np.ndarray] | None


@dataclass(frozen=True, slots=True)
class Penalty:
    l1: float
    l2: float

    def value(self, theta: np.ndarray) -> float:
        return float(self.l1 * np.abs(theta).sum() + self.l2 * np.square(theta).sum())

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        return self.l1 * np.sign(theta) + 2.0 * self.l2 * theta


def regularize(penalty: Penalty | None, parameters: Parameters) -> dict[str, Any]:
    """``{"l1", "l2", "value", "gradient"}`` as API.md shows it (``{"value": 0.0}`` without a
    penalty; no gradient without parameters). :func:`require_finite` checks it."""
    if penalty is None:
        return {"value": 0.0}
    result: dict[str, Any] = {"l1": penalty.l1, "l2": penalty.l2}
    if parameters is None:
        result["value"] = 0.0
    elif isinstance(parameters, dict):
        result["value"] = sum(penalty.value(theta) for theta in parameters.values())
        result["gradient"] = {name: penalty.gradient(theta) for name, theta in parameters.items()}
    else:
        result["value"] = penalty.value(parameters)
        result["gradient"] = penalty.gradient(parameters)
    return result


def require_finite(result: dict[str, Any]) -> None:
    """A 422 when the value or a gradient overflowed float64."""
    values = [result["value"]]
    gradients = result.get("gradient")
    if isinstance(gradients, dict):
        values += list(gradients.values())
    elif gradients is not None:
        values.append(gradients)
    if not all(np.all(np.isfinite(v)) for v in values):
        raise NonFiniteResult(
            ["body", "regularization"],
            "the regularization overflows float64; scale l1, l2 or the parameters down",
        )
