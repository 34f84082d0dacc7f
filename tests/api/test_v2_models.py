"""The Open Inference Protocol v2 through the real ASGI app: server metadata and health, every
loss as a model (its metadata, aliases, integer-label inputs) and unknown models (404).
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.api.v2.models import OUTPUTS, TENSOR_INPUTS, array_params
from service.app import create_app
from service.losses.registry import REGISTRY, LossSpec
from tests.support.oip import (
    DTYPES,
    assert_protocol_error,
    infer,
    mse_request,
)

SPECS = list(REGISTRY.values())


# ---- server, health, metadata ---------------------------------------------------------------


def test_server_metadata_and_health(client: TestClient) -> None:
    metadata = client.get("/v2").json()
    assert metadata["name"] == "loss-service"
    assert "binary_tensor_data" in metadata["extensions"]
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    ready = client.get("/v2/models/bce/ready")
    assert (ready.status_code, ready.json()) == (
        200,
        {"name": "binary_cross_entropy", "ready": True},
    )


def test_readiness_is_503_before_warm_up() -> None:
    app = create_app(warm=lambda: 0)
    test_client = TestClient(app, raise_server_exceptions=False)  # no lifespan: never warmed
    assert test_client.get("/v2/health/live").status_code == 200
    assert test_client.get("/v2/health/ready").status_code == 503
    assert test_client.get("/v2/models/mse/ready").status_code == 503


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_model_metadata(client: TestClient, spec: LossSpec) -> None:
    metadata = client.get(f"/v2/models/{spec.name}").json()
    assert metadata["name"] == spec.name
    assert metadata["versions"] == ["1"]
    names = [item["name"] for item in metadata["inputs"]]
    assert names == [*TENSOR_INPUTS, *array_params(spec)]
    assert [item["name"] for item in metadata["outputs"]] == list(OUTPUTS)
    for item in metadata["inputs"] + metadata["outputs"]:
        assert item["datatype"] in DTYPES
        assert all(dim == -1 or dim > 0 for dim in item["shape"]), item
    outputs = {item["name"]: item for item in metadata["outputs"]}
    assert outputs["cost"]["shape"] == [1]
    assert outputs["per_sample"]["shape"] == [-1]
    assert outputs["gradient"]["shape"] == metadata["inputs"][0]["shape"]
    versioned = client.get(f"/v2/models/{spec.name}/versions/1").json()
    assert versioned == metadata
    for alias in spec.aliases:
        assert client.get(f"/v2/models/{alias}").json()["name"] == spec.name


def test_integer_label_losses_declare_int64_targets(client: TestClient) -> None:
    for name in ("sparse_categorical_cross_entropy", "ctc", "multi_margin"):
        inputs = {item["name"]: item for item in client.get(f"/v2/models/{name}").json()["inputs"]}
        assert inputs["targets"]["datatype"] == "INT64", name
    ctc = {item["name"]: item for item in client.get("/v2/models/ctc").json()["inputs"]}
    assert ctc["target_lengths"]["datatype"] == "INT64"


@pytest.mark.parametrize("path", ["/v2/models/nope", "/v2/models/nope/ready"])
def test_unknown_model_is_404_with_close_matches(client: TestClient, path: str) -> None:
    problem = assert_protocol_error(client.get(path), 404, "unknown loss 'nope'", "mape")
    assert problem["errors"][0]["close_matches"] == ["mape"]


def test_unknown_model_and_version_on_infer_are_404(client: TestClient) -> None:
    assert_protocol_error(infer(client, "msee", mse_request()), 404, "'mse'")
    response = client.post("/v2/models/mse/versions/2/infer", content=json.dumps(mse_request()))
    assert_protocol_error(response, 404, "version")
    response = client.post("/v2/models/mse/versions/1/infer", content=json.dumps(mse_request()))
    assert response.status_code == 200
