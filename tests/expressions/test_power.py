"""PyTorch's derivative of u**v in the custom loss, where the textbook rule is 0 * inf.

The custom loss differentiates ``u**v`` as PyTorch's autograd does (torch/csrc/autograd/
FunctionsManual.cpp): d/du is 0 where the exponent is 0 (``pow_backward_self``,
``pow_backward`` for a scalar exponent), d/dv is 0 where u == 0 and v >= 0
(``pow_backward_exponent``). The rule is written out by hand below (:func:`torch_rule`) and
compared with the kernel at p = 0, y = 0 and around it, together with central differences
where the function is smooth.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.expressions import compile_expression
from service.losses.custom import custom_kernel

# --- custom expressions: d/dp u**v as PyTorch ---------------------------------------------------


def power(a: float, b: float) -> float:
    with np.errstate(all="ignore"):
        return float(np.power(np.float64(a), np.float64(b)))


def log(a: float) -> float:
    with np.errstate(all="ignore"):
        return float(np.log(np.float64(a)))


def torch_rule(u: float, v: float, du: float, dv: float) -> float:
    """d/dp u**v, PyTorch's autograd written out: grad_u * du + grad_v * dv, each term only where
    that operand depends on p (du, dv None otherwise).

    grad_u = pow_backward_self: where(exponent == 0, 0, exponent * self.pow(exponent - 1));
    grad_v = pow_backward_exponent: where(self == 0 & exponent >= 0, 0, result * self.log()).
    """
    total = 0.0
    if du is not None:
        grad_u = 0.0 if v == 0 else v * power(u, v - 1)
        total += grad_u * du
    if dv is not None:
        grad_v = 0.0 if (u == 0 and v >= 0) else power(u, v) * log(u)
        total += grad_v * dv
    return total


def run_kernel(text: str, p: list[float], y: list[float]) -> tuple[np.ndarray, np.ndarray]:
    predictions, targets = np.array(p, dtype=float), np.array(y, dtype=float)
    losses, gradient = np.empty(len(p)), np.empty(len(p))
    custom_kernel(
        predictions, targets, np.ones(len(p)), losses, gradient, compile_expression(text, {})
    )
    return losses, gradient


#: Expression, (u, v, du, dv) as functions of (p, y); None: that operand does not depend on p.
POWERS: dict[str, Callable[[float, float], tuple]] = {
    "p**y": lambda p, y: (p, y, 1.0, None),
    "p**p": lambda p, y: (p, p, 1.0, 1.0),
    "y**p": lambda p, y: (y, p, None, 1.0),
    "(p - y)**(p + 1)": lambda p, y: (p - y, p + 1, 1.0, 1.0),
    "(p * p)**(p + y)": lambda p, y: (p * p, p + y, 2 * p, 1.0),
    "p**(y - 1)": lambda p, y: (p, y - 1, 1.0, None),
    "p**3": lambda p, y: (p, 3.0, 1.0, None),
}
POINTS = [(p, y) for p in (0.0, 1e-3, 0.5, 1.0, 2.0) for y in (0.0, 0.5, 1.0, 2.0, 3.0, -1.0)]


@pytest.mark.compiled  # IEEE inf / NaN where Python raises: compiled kernels only
@pytest.mark.parametrize("text", list(POWERS))
def test_power_derivative_is_pytorchs_rule(text: str) -> None:
    p, y = zip(*POINTS, strict=True)
    _, gradient = run_kernel(text, list(p), list(y))
    for (point, target), got in zip(POINTS, gradient, strict=True):
        expected = torch_rule(*POWERS[text](point, target))
        if math.isnan(expected):
            assert math.isnan(got), (text, point, target, got)
        elif math.isinf(expected):
            assert got == expected, (text, point, target, got)
        else:
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-300), (text, point, target)


@pytest.mark.compiled  # IEEE inf / NaN where Python raises: compiled kernels only
def test_p_to_the_y_at_zero_zero() -> None:
    """The report's case: 0**0 = 1 and, as PyTorch, slope 0 (the textbook y p**(y - 1) is
    0 * inf = NaN there). Around it, by hand: slope y p**(y - 1)."""
    losses, gradient = run_kernel("p**y", [0.0, 0.0, 0.0, 0.5, 2.0], [0.0, 1.0, 2.0, 0.0, 3.0])
    assert losses.tolist() == [1.0, 0.0, 0.0, 1.0, 8.0]
    assert gradient.tolist() == [0.0, 1.0, 0.0, 0.0, 12.0]  # 1 x 0**0 = 1; 3 x 2**2 = 12
    assert compile_expression("p**y", {}).derivative == "where(y == 0, 0, y * p**(y - 1))"


#: Expression, y, a point where the function is smooth (or p = 0 where both sides exist).
SMOOTH = [
    ("p**y", 0.0, 0.0),  # constant 1 around p = 0: slope 0
    ("p**y", 2.0, 0.0),
    ("p**y", 3.0, 0.0),
    ("p**y", 0.0, 0.7),
    ("p**y", 2.5, 0.7),
    ("(p * p)**(p + y)", 1.0, 0.0),  # |p|**(2p + 2) ~ p**2 at 0: slope 0
    ("(p * p)**(p + y)", 0.0, 0.3),
    ("y**p", 0.0, 0.5),  # 0**p = 0 for p > 0: slope 0
    ("y**p", 2.0, -0.4),
]


@pytest.mark.compiled  # IEEE inf / NaN where Python raises: compiled kernels only
@pytest.mark.parametrize(("text", "y", "p"), SMOOTH)
def test_power_derivative_matches_central_differences(text: str, y: float, p: float) -> None:
    h = 1e-6
    values, gradient = run_kernel(text, [p - h, p + h, p], [y, y, y])
    difference = (values[1] - values[0]) / ((p + h) - (p - h))
    assert gradient[2] == pytest.approx(difference, rel=1e-6, abs=1e-6), (text, p, y)


def test_custom_p_to_the_y_through_http(client: TestClient) -> None:
    body = {
        "predictions": [[0.0, 0.5], [0.0, 2.0]],
        "targets": [[0, 2], [1, 3]],
        "params": {"expression": "p**y"},
        "reduction": "sum",
    }
    response = client.post("/v1/losses/custom", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    # by hand: 0**0 = 1, 0.5**2 = 0.25, 0**1 = 0, 2**3 = 8; slopes 0 (PyTorch, y = 0),
    # 2 x 0.5 = 1, 1 x 0**0 = 1, 3 x 2**2 = 12.
    assert result["cost"] == 9.25
    assert result["gradient"] == [[0.0, 1.0], [1.0, 12.0]]
    # 0 < y < 1 at p = 0: the slope is infinite (in PyTorch too): a 422 naming the sample.
    pole = {**body, "targets": [[0, 2], [0.5, 3]]}
    response = client.post("/v1/losses/custom", json=pole)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "predictions", 1]
