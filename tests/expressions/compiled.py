"""Running one compiled custom expression through the service's kernel, and comparing its
results with a naive value to the magnitudes involved.
"""

from __future__ import annotations

import math

import numpy as np

from service.expressions import compile_expression
from service.losses.custom import custom_kernel
from tests.reference.expressions import CONSTANTS


def run_kernel(text: str, p: list[float], y: list[float]) -> tuple[np.ndarray, np.ndarray]:
    predictions, targets = np.array(p, dtype=float), np.array(y, dtype=float)
    losses, gradient = np.empty(len(p)), np.empty(len(p))
    expression = compile_expression(text, CONSTANTS)
    custom_kernel(predictions, targets, np.ones(len(p)), losses, gradient, expression)
    return losses, gradient


def same(got: float, expected: float, magnitude: float) -> bool:
    if not (math.isfinite(got) and math.isfinite(expected)):
        return (got != got and expected != expected) or got == expected
    return abs(got - expected) <= 1e-12 * max(abs(expected), magnitude) + 1e-300
