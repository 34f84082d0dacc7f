"""GET /v1/losses (the catalogue), /openapi.json and /docs, checked against API.md and LOSSES.md."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.registry import REGISTRY, LossSpec

SPECS = [pytest.param(spec, id=name) for name, spec in REGISTRY.items()]
ALIASES = [
    pytest.param(alias, spec, id=alias) for spec in REGISTRY.values() for alias in spec.aliases
]
ENTRY_KEYS = {"name", "aliases", "family", "summary", "formula", "shapes", "params"}

#: LOSSES.md, regression table: every params key with its default ("Every params key below is
#: optional, with the default shown").
DOCUMENTED_DEFAULTS: dict[str, dict[str, Any]] = {
    "mse": {},
    "mae": {},
    "huber": {"delta": 1.0},
    "smooth_l1": {"beta": 1.0},
    "log_cosh": {},
    "msle": {},
    "mape": {"eps": 1e-7},
    "quantile": {"quantile": 0.5},
    "poisson_nll": {"log_input": True, "eps": 1e-8},
}
#: LOSSES.md ranges: delta > 0, beta >= 0, quantile in (0, 1).
DOCUMENTED_BOUNDS = [
    pytest.param("huber", "delta", {"exclusiveMinimum": 0}, id="huber-delta"),
    pytest.param("smooth_l1", "beta", {"minimum": 0}, id="smooth_l1-beta"),
    pytest.param(
        "quantile",
        "quantile",
        {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
        id="quantile-quantile",
    ),
]


@pytest.fixture(scope="module")
def catalogue(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/v1/losses")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["count"] == len(body["losses"])
    return {entry["name"]: entry for entry in body["losses"]}


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs_in(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs_in(value)]
    return []


def schema_defaults(params_schema: dict[str, Any]) -> dict[str, Any]:
    return {key: prop.get("default") for key, prop in params_schema["properties"].items()}


# --- GET /v1/losses --------------------------------------------------------------------------


def test_catalogue_lists_exactly_the_registry(catalogue: dict[str, dict[str, Any]]) -> None:
    assert sorted(catalogue) == sorted(REGISTRY)


def test_every_documented_regression_loss_is_listed(catalogue: dict[str, dict[str, Any]]) -> None:
    for name in DOCUMENTED_DEFAULTS:
        assert catalogue[name]["family"] == "regression"


@pytest.mark.parametrize("spec", SPECS)
def test_catalogue_entry_describes_the_loss(
    catalogue: dict[str, dict[str, Any]], spec: LossSpec
) -> None:
    entry = catalogue[spec.name]
    assert set(entry) >= ENTRY_KEYS
    assert entry["aliases"] == list(spec.aliases)
    assert entry["family"] == spec.family
    assert entry["summary"] == spec.summary
    assert entry["summary"].strip()
    assert set(entry["formula"]) == {"loss", "gradient"}
    assert entry["formula"]["loss"].strip()
    assert entry["formula"]["gradient"].strip()
    assert {"predictions", "targets"} <= set(entry["shapes"])
    params = entry["params"]
    assert params["type"] == "object"
    assert params["additionalProperties"] is False  # an unknown key is a 422, never ignored
    assert set(params["properties"]) == set(spec.params.model_fields)
    for key, prop in params["properties"].items():
        assert "default" in prop, f"{spec.name}.{key} has no default in its schema"


@pytest.mark.parametrize(("name", "defaults"), DOCUMENTED_DEFAULTS.items())
def test_params_defaults_match_losses_md(
    catalogue: dict[str, dict[str, Any]], name: str, defaults: dict[str, Any]
) -> None:
    assert schema_defaults(catalogue[name]["params"]) == defaults


@pytest.mark.parametrize(("name", "key", "bounds"), DOCUMENTED_BOUNDS)
def test_params_ranges_match_losses_md(
    catalogue: dict[str, dict[str, Any]], name: str, key: str, bounds: dict[str, float]
) -> None:
    prop = catalogue[name]["params"]["properties"][key]
    assert {bound: prop.get(bound) for bound in bounds} == bounds


@pytest.mark.parametrize("spec", SPECS)
def test_get_one_loss_by_name(
    client: TestClient, catalogue: dict[str, dict[str, Any]], spec: LossSpec
) -> None:
    response = client.get(f"/v1/losses/{spec.name}")
    assert response.status_code == 200
    assert response.json() == catalogue[spec.name]


@pytest.mark.parametrize(("alias", "spec"), ALIASES)
def test_get_one_loss_by_alias_gives_the_canonical_entry(
    client: TestClient, catalogue: dict[str, dict[str, Any]], alias: str, spec: LossSpec
) -> None:
    response = client.get(f"/v1/losses/{alias}")
    assert response.status_code == 200
    assert response.json() == catalogue[spec.name]


@pytest.mark.parametrize(
    ("name", "close_match"),
    [("msse", "mse"), ("hubber", "huber"), ("smooth_l2", "smooth_l1"), ("quantil", "quantile")],
)
def test_unknown_loss_is_404_with_close_matches(
    client: TestClient, name: str, close_match: str
) -> None:
    response = client.get(f"/v1/losses/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 404
    assert {"type", "title", "detail"} <= set(problem)
    assert name in problem["detail"]
    assert f"'{close_match}'" in problem["detail"]


# --- /openapi.json ---------------------------------------------------------------------------


def test_every_reference_in_the_openapi_document_resolves(openapi: dict[str, Any]) -> None:
    refs = refs_in(openapi)
    assert refs
    for ref in refs:
        resolve(openapi, ref)


def test_operation_ids_are_unique(openapi: dict[str, Any]) -> None:
    ids = [
        operation["operationId"]
        for path in openapi["paths"].values()
        for operation in path.values()
        if "operationId" in operation
    ]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("spec", SPECS)
def test_each_loss_has_a_documented_post_operation(
    openapi: dict[str, Any], catalogue: dict[str, dict[str, Any]], spec: LossSpec
) -> None:
    path = openapi["paths"][f"/v1/losses/{spec.name}"]
    assert set(path) == {"post"}
    operation = path["post"]
    assert operation["operationId"] == f"compute_{spec.name}"

    content = operation["requestBody"]["content"]["application/json"]
    request_schema = resolve(openapi, content["schema"]["$ref"])
    assert {"predictions", "targets"} <= set(request_schema["required"])
    params_refs = refs_in(request_schema["properties"]["params"])
    assert len(params_refs) == 1
    params_schema = resolve(openapi, params_refs[0])
    assert params_schema == catalogue[spec.name]["params"]
    assert content["example"] == catalogue[spec.name]["example"]

    for status in ("400", "404", "413", "415", "422"):
        problem = operation["responses"][status]["content"]["application/problem+json"]
        assert resolve(openapi, problem["schema"]["$ref"])["properties"].keys() >= {
            "type",
            "title",
            "status",
            "detail",
        }
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert set(resolve(openapi, ok)["properties"]) == {
        "loss",
        "reduction",
        "cost",
        "per_sample",
        "gradient",
        "sum",
        "weight_sum",
        "count",
        "extras",
    }


@pytest.mark.parametrize("spec", SPECS)
def test_openapi_example_is_answered(
    client: TestClient, openapi: dict[str, Any], spec: LossSpec
) -> None:
    operation = openapi["paths"][f"/v1/losses/{spec.name}"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    response = client.post(f"/v1/losses/{spec.name}", json=example)
    assert response.status_code == 200, response.text
    assert response.json()["loss"] == spec.name


def test_docs_page_is_html(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
