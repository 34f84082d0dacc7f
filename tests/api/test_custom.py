"""The custom loss through POST /v1/losses/custom: values with constants and the gradient, errors
pointing at the expression and the constant, and poles as a 422 naming the sample. The grammar
and the derivatives are tested in tests/expressions/.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from tests.api.helpers import assert_problem, post_loss

# --- through HTTP ------------------------------------------------------------------------------

BODY = {"predictions": [[0.2, 0.8], [0.6, 0.4]], "targets": [[0, 1], [1, 0]]}


def test_http_values_constants_and_gradient(client: TestClient) -> None:
    params = {"expression": "k * (p - y)**2 + bias", "constants": {"k": 2, "bias": 0.5}}
    result = post_loss(client, "custom", {**BODY, "params": params, "reduction": "sum"})
    # elements: 2 d^2 + 0.5 with d = 0.2, -0.2, -0.4, 0.4; slopes 4 d
    assert result["per_sample"] == pytest.approx([0.58, 0.82])
    assert result["cost"] == pytest.approx(2.8)
    np.testing.assert_allclose(result["gradient"], [[0.8, -0.8], [-1.6, 1.6]], rtol=1e-12)


def test_http_errors_point_at_the_expression_and_the_constant(client: TestClient) -> None:
    def errors(params):
        response = client.post("/v1/losses/custom", json={**BODY, "params": params})
        return assert_problem(response, 422)["errors"][0]

    error = errors({"expression": "p + cosh(p)"})
    assert error["loc"] == ["body", "params", "expression"]
    assert "unknown function 'cosh' at column 5; allowed: abs" in error["msg"]
    error = errors({"expression": "p * z", "constants": {"k": 1}})
    assert "unknown name 'z' at column 5" in error["msg"] and "(k)" in error["msg"]
    assert errors({"expression": "p", "constants": {"k": "1"}})["loc"][-1] == "k"
    assert errors({"expression": "p", "constants": {"y": 1}})["loc"][3] == "y"
    assert errors({"expression": "p", "constants": {"2k": 1}})["loc"][3] == "2k"


@pytest.mark.parametrize(
    ("text", "predictions", "sample"),
    [
        ("1 / (p - y)", [[0.2, 0.8], [1.0, 0.4]], 1),  # pole at p == y
        ("log(p)", [[0.0, 0.8], [0.6, 0.4]], 0),
        ("log(p - 0.5)", [[0.2, 0.8], [0.6, 0.4]], 0),  # NaN
        ("sqrt(p)", [[0.2, 0.8], [0.0, 0.4]], 1),  # finite value, infinite slope
        ("exp(1000 * p)", [[0.2, 0.8], [0.6, 0.4]], 0),
    ],
)
def test_a_pole_is_a_422_naming_the_sample(
    client: TestClient, text: str, predictions: list, sample: int
) -> None:
    body = {**BODY, "predictions": predictions, "params": {"expression": text}}
    problem = assert_problem(client.post("/v1/losses/custom", json=body), 422)
    assert problem["errors"][0]["loc"] == ["body", "predictions", sample]
