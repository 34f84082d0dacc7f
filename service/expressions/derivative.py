"""The exact derivative in ``p`` of an expression, simplified so that it stays readable.

Rules (``u``, ``v``: subexpressions; ``'``: d/dp; a subexpression without ``p`` has derivative 0)::

    p' = 1                 (-u)' = -u'              (u ± v)' = u' ± v'
    (u v)' = u' v + u v'   (u / v)' = (u' - u / v * v') / v
    (u**c)' = where(c == 0, 0, c u**(c - 1)) u'     when c does not contain p
    (u**v)' = where(u == 0, B u' + E v', u**v (v' log(u) + v u' / u))   otherwise, with
              B = where(v == 0, 0, v u**(v - 1)),  E = where(v >= 0, 0, u**v log(u))
    abs(u)' = sign(u) u'        (0 at u = 0: API.md's kink rule)
    exp(u)' = exp(u) u'         log(u)' = u' / u           log1p(u)' = u' / (1 + u)
    expm1(u)' = exp(u) u'       sqrt(u)' = u' / (2 sqrt(u))  square(u)' = 2 u u'
    sin(u)' = cos(u) u'         cos(u)' = -(sin(u) u')     tanh(u)' = (1 - square(tanh(u))) u'
    sigmoid(u)' = sigmoid(u) sigmoid(-u) u'   (no cancellation, unlike s (1 - s))
    softplus(u)' = sigmoid(u) u'
    relu(u)' = where(u > 0, u', 0)            sign(u)' = 0
    minimum(a, b)' = where(a < b, a', where(b < a, b', where(a' == b', a', 0)))
    maximum(a, b)' = the same with >
    clip(x, lo, hi)' = where(lo < x, where(x < hi, x', 0), 0)   (constant bounds; otherwise
                       the derivative of minimum(maximum(x, lo), hi))
    where(c, a, b)' = where(c, a', b')        (the branch taken is differentiated)

Powers follow PyTorch where the textbook rule is 0 * inf or inf - inf (torch/csrc/autograd/
FunctionsManual.cpp): ``pow_backward`` / ``pow_backward_self`` give d(u**v)/du = 0 where the
exponent is 0 (``at::where(exponent == 0.0, 0, exponent * self.pow(exponent - 1))``; a scalar
exponent of 0 gives zeros), so ``p**y`` has slope 0 at p = 0, y = 0 instead of 0 * 0**-1;
``pow_backward_exponent`` gives d(u**v)/dv = 0 where ``self == 0 && exponent >= 0`` (0 at
u = 0, v = 0 "by continuity", -inf for v < 0), else ``result * log(self)``. Those forms are
used where u == 0 (for a variable exponent) or c == 0 (a constant one); everywhere else the
derivative is the one above, unchanged (for c == 0 with u != 0 both are 0).

At a tie of minimum / maximum the function has a kink unless both sides have the same
derivative there: the derivative is that common value where they agree (``minimum(p, p**y)``
at y = 1), else 0, as API.md says for kinks; at clip's constant bounds it is 0.

Simplification happens as the derivative is built (each constructor below looks at its
arguments only, so the work is linear): ``x + 0``, ``x * 1``, ``x * 0 = 0`` (a structural zero:
the derivative of a term without p), ``x**1``, ``x**0``, double negation, signs pulled out of
products and quotients, numbers first in a product (``2 * (p - y)``), ``where(c, a, a) = a``,
``where`` of a comparison of two numbers. Arithmetic on two numbers is folded only when the
result is finite (``math.pow`` with its overflow caught), so folding is O(1) per node and never
raises. The user's own expression is never rewritten: only its derivative is simplified.
"""

from __future__ import annotations

import math
import operator
from typing import cast

from service.expressions.grammar import ExpressionError
from service.expressions.tree import (
    ONE,
    ZERO,
    Node,
    apply,
    depends_on_p,
    is_number,
    number,
    unique_nodes,
)

#: Bounds on the derivative (it is O(nodes x depth) as text but O(nodes) as distinct terms).
MAX_DERIVATIVE_NODES = 5000
MAX_DERIVATIVE_DEPTH = 400

_COMPARE = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def derivative(tree: Node) -> Node:
    """d tree / dp, simplified; :class:`ExpressionError` when it exceeds the bounds above."""
    result = _Differentiator().of(tree)
    if result.depth > MAX_DERIVATIVE_DEPTH:
        raise ExpressionError(
            f"the derivative of the expression nests {result.depth} levels deep; at most "
            f"{MAX_DERIVATIVE_DEPTH}: simplify the expression"
        )
    terms = sum(1 for _ in unique_nodes(result))
    if terms > MAX_DERIVATIVE_NODES:
        raise ExpressionError(
            f"the derivative of the expression has {terms} distinct terms; at most "
            f"{MAX_DERIVATIVE_NODES}: simplify the expression"
        )
    return result


# -- simplifying constructors ----------------------------------------------------------------


def _folded(value: float) -> Node | None:
    return number(value) if math.isfinite(value) else None


def _value(node: Node) -> float:
    """A number node's value (numbers hold floats; names hold their name)."""
    return cast(float, node.value)


def _both_numbers(a: Node, b: Node) -> bool:
    return a.operator == "number" and b.operator == "number"


def add(a: Node, b: Node) -> Node:
    if is_number(a, 0.0):
        return b
    if is_number(b, 0.0):
        return a
    if _both_numbers(a, b) and (folded := _folded(_value(a) + _value(b))) is not None:
        return folded
    if b.operator == "neg":
        return subtract(a, b.arguments[0])
    if a.operator == "neg":
        return subtract(b, a.arguments[0])
    return apply("+", a, b)


def subtract(a: Node, b: Node) -> Node:
    if is_number(b, 0.0):
        return a
    if is_number(a, 0.0):
        return negate(b)
    if a == b:
        return ZERO
    if _both_numbers(a, b) and (folded := _folded(a.value - b.value)) is not None:  # type: ignore[operator]
        return folded
    if b.operator == "neg":
        return add(a, b.arguments[0])
    return apply("-", a, b)


def negate(a: Node) -> Node:
    if a.operator == "number":
        return number(-a.value)  # type: ignore[operator]
    if a.operator == "neg":
        return a.arguments[0]
    if a.operator == "-":
        return apply("-", a.arguments[1], a.arguments[0])
    return apply("neg", a)


def multiply(a: Node, b: Node) -> Node:
    if is_number(a, 0.0) or is_number(b, 0.0):
        return ZERO
    if is_number(a, 1.0):
        return b
    if is_number(b, 1.0):
        return a
    if _both_numbers(a, b) and (folded := _folded(_value(a) * _value(b))) is not None:
        return folded
    if is_number(a, -1.0):
        return negate(b)
    if is_number(b, -1.0):
        return negate(a)
    if a.operator == "neg":
        return negate(multiply(a.arguments[0], b))
    if b.operator == "neg":
        return negate(multiply(a, b.arguments[0]))
    if b.operator == "/" and is_number(b.arguments[0], 1.0):  # a * (1 / v) = a / v
        return divide(a, b.arguments[1])
    if a.operator == "/" and is_number(a.arguments[0], 1.0):
        return divide(b, a.arguments[1])
    if b.operator == "number" and a.operator != "number":
        return multiply(b, a)
    if a.operator == "number" and b.operator == "*" and b.arguments[0].operator == "number":
        folded = _folded(_value(a) * _value(b.arguments[0]))
        if folded is not None:
            return multiply(folded, b.arguments[1])
    return apply("*", a, b)


def divide(a: Node, b: Node) -> Node:
    if is_number(a, 0.0):
        return ZERO
    if is_number(b, 1.0):
        return a
    if a == b and a.operator != "number":  # u / u = 1 (a 0 / 0 here sits beside a pole)
        return ONE
    if _both_numbers(a, b) and b.value != 0.0:
        folded = _folded(a.value / b.value)  # type: ignore[operator]
        if folded is not None:
            return folded
    if a.operator == "neg":
        return negate(divide(a.arguments[0], b))
    if a.operator == "number" and a.value < 0.0:  # type: ignore[operator]
        return negate(divide(negate(a), b))
    if b.operator == "neg":
        return negate(divide(a, b.arguments[0]))
    return apply("/", a, b)


def power(a: Node, b: Node) -> Node:
    if is_number(b, 0.0):
        return ONE
    if is_number(b, 1.0):
        return a
    if _both_numbers(a, b):
        try:
            folded = _folded(math.pow(a.value, b.value))  # type: ignore[arg-type]
        except (OverflowError, ValueError):
            folded = None
        if folded is not None:
            return folded
    return apply("**", a, b)


def where(condition: Node, a: Node, b: Node) -> Node:
    if a == b:
        return a
    left, right = condition.arguments
    if _both_numbers(left, right):
        return a if _COMPARE[condition.operator](_value(left), _value(right)) else b
    return apply("where", condition, a, b)


def call(function: str, *arguments: Node) -> Node:
    return apply(function, *arguments)


def _base_slope(u: Node, v: Node) -> Node:
    """d(u**v)/du as PyTorch's ``pow_backward_self``: 0 where v == 0 (where u**(v - 1) may be
    infinite), else v u**(v - 1); a number v folds the condition away."""
    return where(apply("==", v, ZERO), ZERO, multiply(v, power(u, subtract(v, ONE))))


# -- the rules -------------------------------------------------------------------------------


class _Differentiator:
    """One differentiation: shared subexpressions are differentiated once."""

    def __init__(self) -> None:
        self.memo: dict[Node, Node] = {}
        self.dependence: dict[Node, bool] = {}

    def of(self, node: Node) -> Node:
        if node not in self.memo:
            if not depends_on_p(node, self.dependence):
                self.memo[node] = ZERO
            else:
                self.memo[node] = self.rule(node)
        return self.memo[node]

    def rule(self, node: Node) -> Node:
        op, arguments = node.operator, node.arguments
        if op == "name":  # depends on p, so it is p
            return ONE
        if op in ("minimum", "maximum"):
            return self.extremum(op, *arguments)
        if op == "clip":
            return self.clip(*arguments)
        if op == "where":
            condition, a, b = arguments
            return where(condition, self.of(a), self.of(b))
        u = arguments[0]
        du = self.of(u)
        if op == "neg":
            return negate(du)
        if op in ("+", "-", "*", "/", "**"):
            return self.binary(node, u, arguments[1], du)
        return self.function(node, op, u, du)

    def binary(self, node: Node, u: Node, v: Node, du: Node) -> Node:
        op, dv = node.operator, self.of(v)
        if op == "+":
            return add(du, dv)
        if op == "-":
            return subtract(du, dv)
        if op == "*":
            return add(multiply(du, v), multiply(u, dv))
        if op == "/":
            return divide(subtract(du, multiply(divide(u, v), dv)), v)
        if not depends_on_p(v, self.dependence):  # u**c
            return multiply(_base_slope(u, v), du)
        textbook = multiply(node, add(multiply(dv, call("log", u)), divide(multiply(v, du), u)))
        # At u == 0 the textbook form is 0 * inf or -inf + inf: PyTorch's two terms there.
        exponent_slope = where(apply(">=", v, ZERO), ZERO, multiply(node, call("log", u)))
        at_zero = add(multiply(_base_slope(u, v), du), multiply(exponent_slope, dv))
        return where(apply("==", u, ZERO), at_zero, textbook)

    @staticmethod
    def function(node: Node, op: str, u: Node, du: Node) -> Node:
        if op == "abs":
            inner = call("sign", u)
        elif op in ("exp", "expm1"):
            inner = call("exp", u)
        elif op == "log":
            return divide(du, u)
        elif op == "log1p":
            return divide(du, add(ONE, u))
        elif op == "sqrt":
            return divide(du, multiply(number(2.0), node))
        elif op == "square":
            inner = multiply(number(2.0), u)
        elif op == "sin":
            inner = call("cos", u)
        elif op == "cos":
            return negate(multiply(call("sin", u), du))
        elif op == "tanh":
            inner = subtract(ONE, call("square", node))
        elif op == "sigmoid":
            inner = multiply(node, call("sigmoid", negate(u)))
        elif op == "softplus":
            inner = call("sigmoid", u)
        elif op == "relu":
            return where(apply(">", u, ZERO), du, ZERO)
        elif op == "sign":
            return ZERO
        else:  # pragma: no cover - the parser admits no other function
            raise AssertionError(f"no derivative rule for {op}")
        return multiply(inner, du)

    def extremum(self, op: str, a: Node, b: Node) -> Node:
        da, db = self.of(a), self.of(b)
        if da == db:  # both sides agree: no kink at a tie
            return da
        wins = "<" if op == "minimum" else ">"
        tie = where(apply("==", da, db), da, ZERO)
        return where(apply(wins, a, b), da, where(apply(wins, b, a), db, tie))

    def clip(self, x: Node, low: Node, high: Node) -> Node:
        dx, d_low, d_high = self.of(x), self.of(low), self.of(high)
        if is_number(d_low, 0.0) and is_number(d_high, 0.0):
            return where(apply("<", low, x), where(apply("<", x, high), dx, ZERO), ZERO)
        return self.of(call("minimum", call("maximum", x, low), high))
