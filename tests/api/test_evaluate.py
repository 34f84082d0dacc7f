"""POST /v1/evaluate: totals against single-loss results, regularization, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

PAYLOAD = {
    "predictions": [[2.0, -1.0, 0.3], [-0.5, 1.5, -2.0]],
    "targets": [[1, 0, 1], [0, 1, 0]],
    "sample_weight": [1.0, 3.0],
}
TERMS = [
    {"loss": "bce", "weight": 1.0, "params": {"from_logits": True}},
    {"loss": "dice", "weight": 0.5, "params": {"mode": "binary", "from_logits": True}},
    {"loss": "mse", "weight": -0.25, "label": "squared"},
]


def post(client: TestClient, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = client.post("/v1/evaluate", json=body)
    assert response.status_code == status, response.text
    return response.json()


def single(client: TestClient, term: dict[str, Any], reduction: str = "mean") -> dict[str, Any]:
    body = {**PAYLOAD, "params": term.get("params"), "reduction": reduction}
    response = client.post(f"/v1/losses/{term['loss']}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_totals_are_the_weighted_sums_of_the_single_loss_results(
    client: TestClient, reduction: str
) -> None:
    result = post(client, {**PAYLOAD, "terms": TERMS, "reduction": reduction})
    singles = [single(client, term, reduction) for term in TERMS]
    weights = [term["weight"] for term in TERMS]
    assert result["cost"] == pytest.approx(
        sum(w * s["cost"] for w, s in zip(weights, singles, strict=True)), rel=1e-12
    )
    np.testing.assert_allclose(
        result["gradient"],
        sum(w * np.asarray(s["gradient"]) for w, s in zip(weights, singles, strict=True)),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        result["per_sample"],
        sum(w * np.asarray(s["per_sample"]) for w, s in zip(weights, singles, strict=True)),
        rtol=1e-12,
    )
    assert list(result["terms"]) == ["bce", "dice", "squared"]  # label, else the name sent
    for term, expected in zip(TERMS, singles, strict=True):
        got = result["terms"][term.get("label", term["loss"])]
        assert got["loss"] == expected["loss"]
        assert got["weight"] == term["weight"]
        for key in ("cost", "sum", "weight_sum"):
            assert got[key] == pytest.approx(expected[key], rel=1e-12)
        np.testing.assert_allclose(got["per_sample"], expected["per_sample"], rtol=1e-12)
        assert got["extras"].keys() == expected["extras"].keys()
    assert result["count"] == 2
    assert result["regularization"] == {"value": 0.0}


def test_regularization_value_and_gradient(client: TestClient) -> None:
    parameters = {"dense/kernel": [[0.5, -0.2], [0.0, 1.5]], "dense/bias": [-3.0], "scale": 2.0}
    l1, l2 = 0.01, 0.1
    body = {
        **PAYLOAD,
        "terms": [TERMS[0]],
        "regularization": {"l1": l1, "l2": l2, "parameters": parameters},
    }
    result = post(client, body)
    flat = np.concatenate([np.ravel(value) for value in parameters.values()])
    # By hand: l1 * (0.5 + 0.2 + 0 + 1.5 + 3 + 2) + l2 * (0.25 + 0.04 + 0 + 2.25 + 9 + 4)
    expected = l1 * 7.2 + l2 * 15.54
    assert np.abs(flat).sum() == pytest.approx(7.2)
    regularization = result["regularization"]
    assert regularization["value"] == pytest.approx(expected, rel=1e-12)
    assert result["cost"] == pytest.approx(single(client, TERMS[0])["cost"] + expected, rel=1e-12)
    # Gradient per named parameter, against central differences of the returned value; the
    # derivative of |theta| at theta = 0 is 0 (API.md: 0 at a kink).
    for name, value in parameters.items():
        theta = np.asarray(value, dtype=float)
        numeric = np.zeros_like(theta)
        for index in np.ndindex(theta.shape):
            if theta[index] == 0.0:
                continue
            for step in (1e-6, -1e-6):
                moved = theta.copy()
                moved[index] += step
                changed = {**parameters, name: moved.tolist() if moved.ndim else float(moved)}
                answer = post(
                    client,
                    {**body, "regularization": {"l1": l1, "l2": l2, "parameters": changed}},
                )
                numeric[index] += np.sign(step) * answer["regularization"]["value"] / 2e-6
        np.testing.assert_allclose(regularization["gradient"][name], numeric, atol=1e-7)
    assert regularization["gradient"]["dense/kernel"][1][0] == 0.0  # l1 at theta = 0


def test_a_flat_parameter_array(client: TestClient) -> None:
    body = {
        **PAYLOAD,
        "terms": [TERMS[2]],
        "regularization": {"l2": 0.5, "parameters": [1.0, -2.0]},
    }
    regularization = post(client, body)["regularization"]
    assert regularization["value"] == pytest.approx(0.5 * 5.0)  # 0.5 (1 + 4)
    assert regularization["gradient"] == [1.0, -2.0]  # 2 * 0.5 * theta


def test_include_trims_totals(client: TestClient) -> None:
    result = post(client, {**PAYLOAD, "terms": TERMS, "include": ["cost"]})
    assert "gradient" not in result
    assert "per_sample" not in result
    assert "per_sample" not in result["terms"]["bce"]


def test_custom_and_aliases_as_terms(client: TestClient) -> None:
    terms = [{"loss": "l1"}, {"loss": "mean_absolute_error", "label": "again"}]
    body = {**PAYLOAD, "targets": [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], "terms": terms}
    result = post(client, body)
    assert result["terms"]["l1"]["loss"] == "mae"
    assert result["cost"] == pytest.approx(2 * result["terms"]["l1"]["cost"], rel=1e-12)


@pytest.mark.parametrize(
    ("changes", "loc", "fragments"),
    [
        ({"terms": []}, ["body", "terms"], ["at least 1"]),
        ({"terms": [TERMS[2]] * 17}, ["body", "terms"], ["at most 16"]),
        (
            {"terms": [{"loss": "mse"}, {"loss": "mse"}]},
            ["body", "terms", 1, "label"],
            ["terms[1]", "label", "'mse'", "terms[0]"],
        ),
        ({"terms": [{"loss": "msse"}]}, ["body", "terms", 0, "loss"], ["msse", "'mse'"]),
        (
            {"terms": [{"loss": "huber", "params": {"detla": 1}}]},
            ["body", "terms", 0, "params", "detla"],
            ["terms[0]", "detla", "delta"],
        ),
        ({"terms": [{"loss": "mse", "wieght": 2}]}, ["body", "terms", 0, "wieght"], ["wieght"]),
        (
            {"terms": [{"loss": "sparse_cce"}]},
            ["body", "targets"],
            ["terms[0]", "targets has shape (2, 3)", "(2,)"],
        ),
        (
            {"terms": [TERMS[2]], "regularization": {"l1": -1}},
            ["body", "regularization", "l1"],
            ["greater than or equal to 0"],
        ),
        (
            {"terms": [TERMS[2]], "regularization": {"parameters": {"w": [[1, 2], [3]]}}},
            ["body", "regularization.parameters.w", 1],
            ["ragged"],
        ),
        ({"terms": [TERMS[2]], "reduction": "max"}, ["body", "reduction"], ["mean", "sum"]),
    ],
    ids=[
        "no-terms",
        "17-terms",
        "duplicate-label",
        "unknown-loss",
        "term-param-typo",
        "term-field-typo",
        "term-contract",
        "negative-l1",
        "ragged-parameter",
        "bad-reduction",
    ],
)
def test_errors_name_the_term_and_field(
    client: TestClient, changes: dict[str, Any], loc: list[Any], fragments: list[str]
) -> None:
    response = client.post("/v1/evaluate", json={**PAYLOAD, "terms": TERMS, **changes})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    first = problem["errors"][0]
    assert first["loc"] == loc, problem
    for fragment in fragments:
        assert fragment in first["msg"], (fragment, first["msg"])


def test_nan_in_parameters_is_a_422_naming_the_parameter(client: TestClient) -> None:
    body = (
        b'{"predictions": [[1, 2]], "targets": [[1, 2]], "terms": [{"loss": "mse"}], '
        b'"regularization": {"l2": 1, "parameters": {"w": [0, NaN]}}}'
    )
    response = client.post(
        "/v1/evaluate", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "regularization.parameters.w", 1]


def test_parameters_count_toward_the_element_limit() -> None:
    from service.app import create_app
    from service.ops.settings import Settings

    app = create_app(Settings(max_elements=10), warm=lambda: 0)
    with TestClient(app) as limited:
        body = {
            "predictions": [[1.0, 2.0]],
            "targets": [[1.0, 2.0]],
            "terms": [{"loss": "mse"}],
            "regularization": {"l2": 1.0, "parameters": {"w": list(range(7))}},
        }
        assert limited.post("/v1/evaluate", json=body).status_code == 413
        body["regularization"]["parameters"] = {"w": list(range(6))}
        assert limited.post("/v1/evaluate", json=body).status_code == 200


def test_openapi_documents_the_route_with_a_working_example(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/evaluate"]["post"]
    content = operation["requestBody"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/EvaluateRequest"}
    assert "EvaluateRequest" in document["components"]["schemas"]
    assert client.post("/v1/evaluate", json=content["example"]).status_code == 200
