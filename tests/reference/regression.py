"""Naive, obviously-right references for the regression losses and the custom loss's test
expression: one element loss ``l(p, y, params)`` per entry.

Nothing here imports from ``service``: every formula is re-typed from ../shared/LOSSES.md, as
plain Python on floats with the ``math`` module. ``params`` are plain dicts; a missing key takes
the default stated in LOSSES.md, so the service's defaults are checked too. The table of every
loss's reference is :data:`tests.reference.REFERENCES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

Params = Mapping[str, Any]
ElementLoss = Callable[[float, float, Params], float]

LOG_2 = math.log(2.0)
# cosh overflows float64 beyond |d| ~ 710. From |d| = 300 on, log cosh d = |d| - log 2 +
# log1p(exp(-2|d|)) and exp(-600) < 1e-260 is far below half an ulp of |d| - log 2, so
# |d| - log 2 is the exactly rounded value there; below 300, log(cosh d) is the definition.
LOG_COSH_LINEAR_FROM = 300.0


def mse(p: float, y: float, params: Params) -> float:
    """(p - y)^2."""
    d = p - y
    return d * d


def mae(p: float, y: float, params: Params) -> float:
    """|p - y|."""
    return abs(p - y)


def huber(p: float, y: float, params: Params) -> float:
    """d^2 / 2 if |d| <= delta, else delta (|d| - delta / 2); delta defaults to 1."""
    delta = params.get("delta", 1.0)
    d = p - y
    if abs(d) <= delta:
        return 0.5 * d * d
    return delta * (abs(d) - 0.5 * delta)


def smooth_l1(p: float, y: float, params: Params) -> float:
    """d^2 / (2 beta) if |d| < beta, else |d| - beta / 2; beta = 0 is |d|; beta defaults to 1."""
    beta = params.get("beta", 1.0)
    d = p - y
    if beta == 0.0:
        return abs(d)
    if abs(d) < beta:
        return 0.5 * d * d / beta
    return abs(d) - 0.5 * beta


def log_cosh(p: float, y: float, params: Params) -> float:
    """log(cosh(p - y)); |d| - log 2 where cosh would overflow (see LOG_COSH_LINEAR_FROM)."""
    d = p - y
    if abs(d) < LOG_COSH_LINEAR_FROM:
        return math.log(math.cosh(d))
    return abs(d) - LOG_2


def msle(p: float, y: float, params: Params) -> float:
    """(log(1 + p) - log(1 + y))^2, for p, y > -1."""
    r = math.log1p(p) - math.log1p(y)
    return r * r


def mape(p: float, y: float, params: Params) -> float:
    """100 |y - p| / max(|y|, eps); eps defaults to 1e-7."""
    eps = params.get("eps", 1e-7)
    return 100.0 * abs(y - p) / max(abs(y), eps)


def quantile(p: float, y: float, params: Params) -> float:
    """Pinball loss max(q r, (q - 1) r) with r = y - p; q defaults to 0.5."""
    q = params.get("quantile", 0.5)
    r = y - p
    return max(q * r, (q - 1.0) * r)


def poisson_nll(p: float, y: float, params: Params) -> float:
    """log_input (default): exp(p) - y p; else p - y log(p + eps), eps defaults to 1e-8."""
    if params.get("log_input", True):
        return math.exp(p) - y * p
    return p - y * math.log(p + params.get("eps", 1e-8))


#: The expression the generic tests send to the custom loss (tests.strategies.samplers draws
#: k > 0);
#: :func:`custom` evaluates it directly.
CUSTOM_EXPRESSION = "k * (p - y)**2 + softplus(y - p) * where(y > 0, 1, 0.5)"


def custom(p: float, y: float, params: Params) -> float:
    """CUSTOM_EXPRESSION typed as Python: k (p - y)^2 + log(1 + e^(y - p)) x (1 if y > 0 else
    0.5), with log(1 + e^d) as d + log1p(e^-d) beyond d = 30, where e^d alone would grow
    towards overflow."""
    assert params["expression"] == CUSTOM_EXPRESSION, params["expression"]
    k = params["constants"]["k"]
    d = y - p
    softplus = math.log1p(math.exp(d)) if d < 30.0 else d + math.log1p(math.exp(-d))
    return k * (p - y) ** 2 + softplus * (1.0 if y > 0 else 0.5)
