"""Random custom-loss expressions: Hypothesis builds each text together with a plain-Python
function computing the same thing (:class:`Generated`), which shares no code with the service,
and records every branch decision (kinks, ``where``) so that points near a kink can be told
apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

from tests.reference.expressions import CONSTANTS, NAIVE


@dataclass(frozen=True)
class Generated:
    """``text`` (fully parenthesised) and ``evaluate(p, y, decisions)``, which appends every
    branch decision (kinks, where) so that points near a kink can be told apart."""

    text: str
    evaluate: Callable[[float, float, list], float]


def leaf(text: str, value: Callable[[float, float], float]) -> Generated:
    return Generated(text, lambda p, y, decisions: value(p, y))


def number_leaf(value: float) -> Generated:
    return leaf(f"({value!r})" if value < 0 else repr(value), lambda p, y: value)


#: p is half of the leaves, so that most expressions depend on it.
LEAVES = st.sampled_from(
    [leaf("p", lambda p, y: p)] * 7
    + [
        leaf("y", lambda p, y: y),
        leaf("k", lambda p, y: CONSTANTS["k"]),
        leaf("bias", lambda p, y: CONSTANTS["bias"]),
    ]
    + [number_leaf(value) for value in (0.5, 2.0, 3.0, -1.5)]
)
SMOOTH = ["exp", "log", "log1p", "expm1", "sqrt", "square", "sin", "cos", "tanh", "sigmoid"]
KINKED = {"abs": lambda a: (a > 0, a < 0), "relu": lambda a: (a > 0, a < 0)}


def unary(name: str, child: Generated) -> Generated:
    function = NAIVE[name]

    def evaluate(p, y, decisions):
        a = child.evaluate(p, y, decisions)
        if name in KINKED:
            decisions.append(KINKED[name](a))
        return function(a)

    return Generated(f"{name}({child.text})", evaluate)


def binary(operator: str, left: Generated, right: Generated) -> Generated:
    squared = operator == "**" and right.text in ("2.0", "(2.0)")  # the kernel's u * u
    function = NAIVE["square"] if squared else NAIVE[operator]
    if squared:
        return Generated(
            f"({left.text}**{right.text})", lambda p, y, d: function(left.evaluate(p, y, d))
        )
    text = (
        f"({left.text}**{right.text})"
        if operator == "**"
        else f"({left.text} {operator} {right.text})"
    )
    return Generated(
        text, lambda p, y, d: function(left.evaluate(p, y, d), right.evaluate(p, y, d))
    )


def extremum(name: str, a: Generated, b: Generated) -> Generated:
    def evaluate(p, y, decisions):
        u, v = a.evaluate(p, y, decisions), b.evaluate(p, y, decisions)
        decisions.append((u < v, u > v))
        return NAIVE[name](u, v)

    return Generated(f"{name}({a.text}, {b.text})", evaluate)


def where(comparison: str, left: Generated, right: Generated, a: Generated, b: Generated):
    def evaluate(p, y, decisions):
        condition = NAIVE[comparison](
            left.evaluate(p, y, decisions), right.evaluate(p, y, decisions)
        )
        decisions.append(condition)
        return NAIVE["where"](condition, a.evaluate(p, y, decisions), b.evaluate(p, y, decisions))

    return Generated(f"where({left.text} {comparison} {right.text}, {a.text}, {b.text})", evaluate)


def extend(children: st.SearchStrategy[Generated]) -> st.SearchStrategy[Generated]:
    exponents = st.sampled_from([2.0, 3.0, 0.5, -1.0]).map(
        lambda v: leaf(f"({v!r})", lambda p, y: v)
    )
    return (
        st.builds(unary, st.sampled_from([*SMOOTH, *KINKED]), children)
        | children.map(lambda c: Generated(f"(-{c.text})", lambda p, y, d: -c.evaluate(p, y, d)))
        | st.builds(binary, st.sampled_from(["+", "-", "*", "/"]), children, children)
        | st.builds(binary, st.just("**"), children, exponents | children)
        | st.builds(extremum, st.sampled_from(["minimum", "maximum"]), children, children)
        | st.builds(
            where,
            st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
            children,
            children,
            children,
            children,
        )
    )


EXPRESSIONS = st.recursive(LEAVES, extend, max_leaves=10)
POINTS = st.floats(-3.0, 3.0, allow_nan=False)
