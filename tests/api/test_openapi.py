"""/openapi.json and /docs through the real app: every reference resolves, operation ids are
unique, each loss has a documented POST operation whose params schema is the catalogue's and
whose example is answered.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY, LossSpec

SPECS = [pytest.param(spec, id=name) for name, spec in REGISTRY.items()]


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
