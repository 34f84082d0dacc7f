"""The expression tree of a custom loss, and its normalised text.

A :class:`Node` is immutable and compared by structure, so equal subexpressions are equal keys
(the derivative's simplifications and the program's shared registers rely on it). Its
``operator`` says what it is:

- ``"number"`` (``value`` a finite float), ``"name"`` (``value`` ``"p"``, ``"y"`` or a constant);
- ``"neg"`` (unary minus), ``"+" "-" "*" "/" "**"`` (two arguments);
- ``"<" "<=" ">" ">=" "==" "!="`` (two arguments; only as the first argument of ``where``);
- a function name of :data:`FUNCTIONS`, with its arguments.

:func:`render` writes the normalised text: minimal parentheses (the tree is kept exactly,
so ``p + (y + 1)`` keeps its parentheses: float addition is not associative), one space around
binary operators and comparisons, none around ``**``, numbers as Python writes them (``2``,
``0.5``, ``1e-07``). Parsing the normalised text gives the same tree.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

#: The callable functions and their parameters (the text shown in arity errors).
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "abs": ("x",),
    "exp": ("x",),
    "log": ("x",),
    "log1p": ("x",),
    "expm1": ("x",),
    "sqrt": ("x",),
    "square": ("x",),
    "sin": ("x",),
    "cos": ("x",),
    "tanh": ("x",),
    "sigmoid": ("x",),
    "softplus": ("x",),
    "relu": ("x",),
    "sign": ("x",),
    "minimum": ("a", "b"),
    "maximum": ("a", "b"),
    "clip": ("x", "lo", "hi"),
    "where": ("condition", "a", "b"),
}
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
ARITHMETIC = ("+", "-", "*", "/", "**")
VARIABLES = ("p", "y")

# Binding strength, weakest first; a call, a name and a non-negative number bind tightest.
_COMPARISON, _SUM, _PRODUCT, _UNARY, _POWER, _ATOM = range(6)
_PRECEDENCE = {
    **dict.fromkeys(COMPARISONS, _COMPARISON),
    "+": _SUM,
    "-": _SUM,
    "*": _PRODUCT,
    "/": _PRODUCT,
    "neg": _UNARY,
    "**": _POWER,
}


class Node:
    """One node of an expression; build with :func:`number`, :func:`name` or :func:`apply`."""

    __slots__ = ("_hash", "arguments", "depth", "operator", "value")

    operator: str
    arguments: tuple[Node, ...]
    value: float | str | None
    depth: int
    _hash: int

    def __init__(
        self, operator: str, arguments: tuple[Node, ...] = (), value: float | str | None = None
    ) -> None:
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "arguments", arguments)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "depth", 1 + max((a.depth for a in arguments), default=0))
        object.__setattr__(self, "_hash", hash((operator, arguments, _value_key(value))))

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Node is immutable")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Node) or self._hash != other._hash:
            return False
        return (
            self.operator == other.operator
            and _value_key(self.value) == _value_key(other.value)
            and self.arguments == other.arguments
        )

    def __repr__(self) -> str:
        return f"Node({render(self)!r})"

    def __str__(self) -> str:
        return render(self)


def _value_key(value: float | str | None) -> object:
    """Numbers compare with the sign of zero, so -0.0 and 0.0 stay distinct nodes."""
    if isinstance(value, float):
        return (value, math.copysign(1.0, value))
    return value


def number(value: float) -> Node:
    return Node("number", value=float(value))


def name(identifier: str) -> Node:
    return Node("name", value=identifier)


def apply(operator: str, *arguments: Node) -> Node:
    return Node(operator, tuple(arguments))


P = name("p")
Y = name("y")
ZERO = number(0.0)
ONE = number(1.0)


def is_number(node: Node, value: float | None = None) -> bool:
    return node.operator == "number" and (value is None or node.value == value)


def depends_on_p(node: Node, _memo: dict[Node, bool] | None = None) -> bool:
    """Whether ``p`` occurs in the expression (shared subexpressions are visited once)."""
    memo = {} if _memo is None else _memo
    if node not in memo:
        if node.operator == "name":
            memo[node] = node.value == "p"
        else:
            memo[node] = any(depends_on_p(a, memo) for a in node.arguments)
    return memo[node]


def unique_nodes(*roots: Node) -> Iterator[Node]:
    """Every distinct subexpression once, children before parents."""
    seen: set[Node] = set()
    for root in roots:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node in seen:
                continue
            if expanded:
                seen.add(node)
                yield node
                continue
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.arguments) if a not in seen)


def format_number(value: float) -> str:
    """``2`` for 2.0, else Python's shortest round-tripping form (``0.1``, ``1e-07``)."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value)) if value != 0 or math.copysign(1.0, value) > 0 else "-0"
    return repr(value)


def _precedence(node: Node) -> int:
    if node.operator == "number":
        return _UNARY if math.copysign(1.0, node.value) < 0 else _ATOM  # type: ignore[arg-type]
    return _PRECEDENCE.get(node.operator, _ATOM)


def render(node: Node) -> str:
    """The normalised text of an expression (see the module docstring)."""
    operator = node.operator
    if operator == "number":
        return format_number(node.value)  # type: ignore[arg-type]
    if operator == "name":
        return str(node.value)
    if operator == "neg":
        (operand,) = node.arguments
        inner = render(operand)
        tight = _precedence(operand) > _UNARY or operand.operator == "**"
        return "-" + (inner if tight else f"({inner})")
    if operator in _PRECEDENCE:
        left, right = node.arguments
        level = _PRECEDENCE[operator]
        if operator == "**":  # right-associative, binds tighter than a unary minus on its left
            left_text = _wrap(left, _precedence(left) <= _POWER)
            right_text = _wrap(right, _precedence(right) < _UNARY)
            return f"{left_text}**{right_text}"
        left_text = _wrap(left, _precedence(left) < level)
        right_text = _wrap(right, _precedence(right) <= level)
        return f"{left_text} {operator} {right_text}"
    return f"{operator}({', '.join(render(a) for a in node.arguments)})"


def _wrap(node: Node, needed: bool) -> str:
    text = render(node)
    return f"({text})" if needed else text
