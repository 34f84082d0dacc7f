"""The custom loss's grammar (API.md "Custom losses", LOSSES.md "Custom"): the parser accepts every
construct of the grammar, with Python's precedence, and its normalised text parses back to the
same tree; everything else is refused with a message naming the column (hostile inputs through
HTTP: tests/api/test_custom_hostile.py); the limits on nesting, terms and length.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given

from service.expressions import ExpressionError, compile_expression, parse
from service.expressions.tree import render
from tests.expressions.compiled import run_kernel
from tests.reference.expressions import CONSTANTS
from tests.strategies.expressions import EXPRESSIONS, Generated

# --- the grammar -------------------------------------------------------------------------------

#: Text, and its value at p = 3, y = 2 (k = 0.7) by hand.
ACCEPTED = [
    ("p - y - 1", 0.0),
    ("p / y / 2", 0.75),
    ("-p**2", -9.0),
    ("(-p)**2", 9.0),
    ("2**3**2", 512.0),
    ("p**-1", 1 / 3),
    ("-2**2", -4.0),
    ("p - -y", 5.0),
    ("2 * p + y * 3", 12.0),
    ("1e-3 * p", 0.003),
    (".5 + 1. + 2.5E1", 26.5),
    ("k * p", 2.1),
    ("abs(y - p) + square(p) + sqrt(4) + sign(-p) + relu(y - p)", 1 + 9 + 2 - 1 + 0),
    ("minimum(p, y) + maximum(p, y) + clip(p, 0, 2.5)", 2 + 3 + 2.5),
    ("exp(0) + log(1) + log1p(0) + expm1(0) + sin(0) + cos(0) + tanh(0)", 2.0),
    ("sigmoid(0) + softplus(0)", 0.5 + math.log(2)),
    ("where(p > y, 1, 2) + where(p <= y, 10, 20) + where(p == 3, 100, 0)", 1 + 20 + 100),
    ("where(p != y, 1, 0) + where(p < y, 1, 0) + where(p >= y + 1, 4, 0)", 5.0),
    ("where(p > 2, where(p < 4, 1, 2), 3)", 1.0),
    ("\t(p\n - y)\r\n", 1.0),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_every_construct_parses_with_pythons_precedence(text: str, expected: float) -> None:
    losses, _ = run_kernel(text, [3.0], [2.0])
    assert losses[0] == pytest.approx(expected, rel=1e-15, abs=1e-15)
    tree = parse(text, CONSTANTS)
    assert parse(render(tree), CONSTANTS) == tree


#: Text, the column reported, and a part of the message.
REFUSED = [
    ("cosh(p)", 1, "unknown function 'cosh' at column 1; allowed: abs, exp"),
    ("p + cosh(p)", 5, "unknown function 'cosh' at column 5"),
    ("p + q", 5, "unknown name 'q' at column 5; names are p (prediction), y (target)"),
    ("exp + 1", 1, "function 'exp' at column 1 must be called: exp(x)"),
    ("p(1)", 1, "'p' at column 1 is a variable, not a function"),
    ("k(1)", 1, "'k' at column 1 is a constant, not a function"),
    ("abs(p, y)", 1, "abs at column 1 takes 1 argument (x), 2 given"),
    ("clip(p, 0)", 1, "clip at column 1 takes 3 arguments (x, lo, hi), 2 given"),
    ("p > 0", 3, "only allowed as the first argument of where(condition, a, b)"),
    ("abs(p > 0)", 7, "only allowed as the first argument of where"),
    ("where((p > 0), 1, 2)", 10, "without parentheses"),
    ("where(p, 1, 2)", 8, "the condition of where at column 8 must be a comparison"),
    ("where(0 < p < 1, 1, 2)", 13, "chained comparison at column 13"),
    ("p and y", 3, "unexpected 'and' at column 3"),
    ("not p", 1, "'not' at column 1 is a Python keyword"),
    ("2p", 2, "unexpected 'p' at column 2: expected an operator"),
    ("p +", 4, "at column 4, found the end of the expression"),
    ("(p", 3, "expected ')' to close the '(' of column 1"),
    ("p)", 2, "unexpected ')' at column 2"),
    ("p % y", 3, "unexpected character '%' at column 3"),
    ("p // y", 4, "at column 4, found '/'"),
    ("1e999 * p", 1, "the number 1e999 at column 1 overflows float64"),
    ("p ＋ y", 3, "U+FF0B ('＋') at column 3: only ASCII is allowed"),
    ("   ", 4, "found the end of the expression"),
]


@pytest.mark.parametrize(("text", "column", "message"), REFUSED)
def test_everything_else_is_refused_at_its_column(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(text, CONSTANTS)
    assert raised.value.column == column
    assert message in raised.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(" * 65 + "p" + ")" * 65, "nests deeper than 64 levels at column 65"),
        ("-" * 65 + "p", "nests deeper than 64 levels at column 65"),
        ("+".join(["p"] * 66), "nests deeper than 64 levels"),
        ("*".join(["(" + "+".join(["p"] * 40) + ")"] * 8), "more than 500 terms"),
        ("p" + " " * 2000, "has 2001 characters; at most 2000"),
    ],
)
def test_limits(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(")):
        compile_expression(text, CONSTANTS)


def test_the_largest_expressions_compile() -> None:
    deep = "(" * 63 + "p" + ")" * 63
    chain = "p"
    for _ in range(60):
        chain = f"sin({chain})"
    wide = "+".join(f"(p * {i})" for i in range(60))
    for text in (deep, chain, wide):
        assert compile_expression(text, CONSTANTS).expression == render(parse(text, CONSTANTS))


@given(expression=EXPRESSIONS)
def test_normalised_text_parses_to_the_same_tree(expression: Generated) -> None:
    tree = parse(expression.text, CONSTANTS)
    normalised = render(tree)
    assert parse(normalised, CONSTANTS) == tree
    assert render(parse(normalised, CONSTANTS)) == normalised
