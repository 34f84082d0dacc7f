"""A naive evaluator of the custom loss's expressions: IEEE 754 results from Python's ``math``,
NumPy only where ``math`` raises, and a walk of an expression tree with it.

It shares no code with the service's compiled kernel (tests/expressions/ checks the kernel
against it, and against the Python functions the expression generator builds beside each text,
tests/strategies/expressions.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from service.expressions.tree import Node, number

# --- a naive evaluator: IEEE 754 results from Python's math, numpy only where math raises ----


def ieee(function: Callable[..., float], fallback: Callable[..., float], *args: float) -> float:
    try:
        result = function(*args)
    except (OverflowError, ValueError, ZeroDivisionError):
        with np.errstate(all="ignore"):
            result = float(fallback(*(np.float64(a) for a in args)))
    return result


def sigmoid(x: float) -> float:
    z = ieee(math.exp, np.exp, -abs(x))
    return 1.0 / (1.0 + z) if x >= 0 else z / (1.0 + z)


def softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(ieee(math.exp, np.exp, -abs(x)))


def nan_aware(function: Callable[..., float]) -> Callable[..., float]:
    """NaN in, NaN out (the documented semantics of relu, sign, minimum, maximum, clip)."""
    return lambda *args: math.nan if any(a != a for a in args) else function(*args)


def truth(holds: Callable[[float, float], bool]) -> Callable[[float, float], float]:
    return nan_aware(lambda a, b: 1.0 if holds(a, b) else 0.0)


NAIVE: dict[str, Callable[..., float]] = {
    "neg": lambda a: -a,
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: ieee(lambda u, v: u / v, np.divide, a, b),
    "**": lambda a, b: ieee(math.pow, np.power, a, b),
    "<": truth(lambda a, b: a < b),
    "<=": truth(lambda a, b: a <= b),
    ">": truth(lambda a, b: a > b),
    ">=": truth(lambda a, b: a >= b),
    "==": truth(lambda a, b: a == b),
    "!=": truth(lambda a, b: a != b),
    "abs": abs,
    "exp": lambda a: ieee(math.exp, np.exp, a),
    "log": lambda a: ieee(math.log, np.log, a),
    "log1p": lambda a: ieee(math.log1p, np.log1p, a),
    "expm1": lambda a: ieee(math.expm1, np.expm1, a),
    "sqrt": lambda a: ieee(math.sqrt, np.sqrt, a),
    "square": lambda a: a * a,
    "sin": lambda a: ieee(math.sin, np.sin, a),
    "cos": lambda a: ieee(math.cos, np.cos, a),
    "tanh": math.tanh,
    "sigmoid": sigmoid,
    "softplus": softplus,
    "relu": nan_aware(lambda a: a if a > 0 else 0.0),
    "sign": nan_aware(lambda a: float((a > 0) - (a < 0))),
    "minimum": nan_aware(min),
    "maximum": nan_aware(max),
    "clip": nan_aware(lambda x, low, high: min(max(x, low), high)),
    "where": lambda c, a, b: c if c != c else (a if c else b),
}
CONSTANTS = {"k": 0.7, "bias": -1.25}
TWO = number(2.0)


def walk(node: Node, p: float, y: float, magnitude: list[float]) -> float:
    """The tree's value at (p, y), recording the largest finite |intermediate| in magnitude."""
    if node.operator == "number":
        value = float(node.value)  # type: ignore[arg-type]
    elif node.operator == "name":
        value = {"p": p, "y": y, **CONSTANTS}[node.value]  # type: ignore[index]
    elif node.operator == "**" and node.arguments[1] == TWO:  # the kernel squares: u * u
        value = NAIVE["square"](walk(node.arguments[0], p, y, magnitude))
    else:
        value = NAIVE[node.operator](*(walk(a, p, y, magnitude) for a in node.arguments))
    if math.isfinite(value):
        magnitude[0] = max(magnitude[0], abs(value))
    return value
