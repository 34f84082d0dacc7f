"""Hostile custom expressions through the real app: every one is a 422 (never a 5xx), the
service never evaluates anything outside the grammar, and it keeps serving afterwards.

Python syntax the grammar does not have (imports, attributes, subscripts, calls of other
names, keyword arguments, lambdas, comprehensions, strings, statements), deep nesting, long
input, lookalike Unicode and control characters are refused while parsing, with the column;
huge exponent chains parse (nothing is folded) and evaluate to inf, which is a non-finite
result (422). Hypothesis then throws junk built from the grammar's own tokens, and arbitrary
text, at the route.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.api.helpers import assert_problem, strict_json

BODY = {"predictions": [[0.2, 0.8], [0.6, 0.4]], "targets": [[0, 1], [1, 0]]}
EXPRESSION_LOC = ["body", "params", "expression"]

HOSTILE = [
    "__import__('os')",
    "__import__('os').system('true')",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "open('x')",
    "lambda p: p",
    "(lambda: 1)()",
    "[p for p in y]",
    "{p: y}",
    "p.real",
    "p[0]",
    "f(p=1)",
    "exp(x=p)",
    "eval('1')",
    "exec('1')",
    "globals()",
    "getattr(p, 'real')",
    "p if y else 1",
    "p and y",
    "not p",
    "p; y",
    "p = 1",
    "(p := 1)",
    "import os",
    "`p`",
    "'p'",
    "b'p'",
    "1j",
    "0x10",
    "1_000",
    "p @ y",
    "~p",
    "p << 1",
    "p // y",
    "p % y",
    "p ^ y",
    "p | y",
    "p # comment",
    "$p",
    "p,",
    "(p, y)",
    "*p",
    "**p",
    "p**",
    "+p",
    "(((p)))))",
    "where(p)",
    "where(p > 0, 1)",
    "abs()",
    "abs(p,)",
    "p\x00",
    "\x00",
    "p\u200b",  # zero-width space
    "\u0440",  # Cyrillic er, looks like p
    "\uff50",  # fullwidth p
    "p \u2212 y",  # minus sign
    "\u212fxp(p)",  # script e
    "p\u00a0+ y",  # no-break space
    "\U0001d429",  # mathematical bold p
    "(" * 200 + "p" + ")" * 200,
    "-" * 500 + "p",
    "abs(" * 100 + "p" + ")" * 100,
    "p" + "**p" * 100,
    "+".join(["p"] * 700),
    "p" * 5000,
    "p" + " " * 5000,
]


def post(client: TestClient, params: Any, **body: Any):
    return client.post("/v1/losses/custom", json={**BODY, **body, "params": params})


@pytest.mark.parametrize("expression", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_expressions_are_refused_while_parsing(client: TestClient, expression: str) -> None:
    problem = assert_problem(post(client, {"expression": expression}), 422)
    assert problem["errors"][0]["loc"] == EXPRESSION_LOC


@pytest.mark.parametrize(
    "expression", ["9**9**9**9", "9.5**9**9**9**9**9**9", "(9**9)**(9**9) * p", "p * 1e308 * 10"]
)
def test_huge_exponent_chains_parse_and_are_a_non_finite_result(
    client: TestClient, expression: str
) -> None:
    problem = assert_problem(post(client, {"expression": expression}), 422)
    assert problem["errors"][0]["loc"] == ["body", "predictions", 0]
    assert "not finite" in problem["errors"][0]["msg"]


@pytest.mark.parametrize(
    "params",
    [
        {"expression": ["p"]},
        {"expression": {"p": 1}},
        {"expression": None},
        {"expression": 1},
        {"expression": "p", "constants": []},
        {"expression": "p", "constants": {"k": {"__class__": 1}}},
        {"expression": "p", "constants": {"x" * 5000: 1}},
        {"expression": "p", "constants": {"__import__('os')": 1}},
        {"expression": "p", "constants": {f"c{i}": 1 for i in range(100)}},
        {"expression": "p", "constants": {"exp": 1}},
        {"expression": "p", "__class__": 1},
        "p",
        ["p"],
    ],
    ids=range(13),
)
def test_hostile_params_are_refused(client: TestClient, params: Any) -> None:
    problem = assert_problem(post(client, params), 422)
    assert problem["errors"][0]["loc"][:2] == ["body", "params"]


def test_a_dunder_constant_is_only_a_name(client: TestClient) -> None:
    response = post(client, {"expression": "__class__ * p", "constants": {"__class__": 2}})
    assert response.status_code == 200
    assert strict_json(response.text)["per_sample"] == pytest.approx([1.0, 1.0])  # 2 p


TOKENS = [
    *"py(),+-*/<>",
    "**",
    "==",
    "<=",
    "!=",
    "k",
    "where",
    "abs",
    "log",
    "exp",
    "clip",
    "minimum",
    "sigmoid",
    "2",
    "0.5",
    "1e308",
    "1e-320",
    "0",
    ".",
    " ",
    "=",
    "[",
    "'",
    "__import__",
]
#: Junk that the parser takes some way: tokens of the grammar (and a few of Python) in any
#: order, or arbitrary text.
JUNK = st.lists(st.sampled_from(TOKENS), max_size=25).map("".join) | st.text(max_size=40)


@given(expression=JUNK)
def test_junk_expressions_never_get_a_5xx(client: TestClient, expression: str) -> None:
    response = post(client, {"expression": expression, "constants": {"k": 0.5}})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        strict_json(response.text)  # no NaN / Infinity in a 200
        return
    assert response.headers["content-type"] == "application/problem+json"
    problem = json.loads(response.text)
    assert problem["errors"][0]["loc"][:2] in (["body", "params"], ["body", "predictions"])
    for leak in ("Traceback", 'File "', "site-packages"):
        assert leak not in response.text


def test_the_service_still_serves_after_all_that(client: TestClient) -> None:
    response = post(client, {"expression": "(p - y)**2 * where(y > 0.5, 2, 1)"})
    assert response.status_code == 200
    assert strict_json(response.text)["cost"] == pytest.approx(0.15)
