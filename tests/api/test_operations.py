"""Operating the service through the ASGI app: API keys, request ids, JSON access logs,
/metrics, overload 503s, the element limit decided before allocation and chunked encoding.
The SIGTERM drain of a real server process and /metrics across workers are in
tests/system/test_shutdown.py.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from service.api import codec
from service.api.problems import Pieces
from service.api.v1.fields import ElementBudget
from service.app import create_app
from service.compute import pipeline
from service.ops.logs import JsonFormatter
from service.ops.settings import Settings
from service.validation.errors import PayloadTooLarge
from tests.support.mse import MSE_BODY
from tests.support.prometheus import sample

V2_MSE = {
    "inputs": [
        {"name": "predictions", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 5]},
        {"name": "targets", "shape": [2, 2], "datatype": "FP64", "data": [1.5, 2, 2, 3]},
        {"name": "sample_weight", "shape": [2], "datatype": "FP64", "data": [1, 3]},
    ]
}


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    app = create_app(Settings(api_keys="first-key, second-key"), warm=lambda: 0)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


# ---- API keys --------------------------------------------------------------------------------

PROTECTED = [
    ("POST", "/v1/losses/mse", MSE_BODY),
    ("POST", "/v1/losses/mean_squared_error", MSE_BODY),
    ("GET", "/v1/losses", None),
    ("GET", "/v1/losses/mse", None),
    ("POST", "/v1/evaluate", {**MSE_BODY, "terms": [{"loss": "mse"}]}),
    ("GET", "/v2", None),
    ("GET", "/v2/models/mse", None),
    ("POST", "/v2/models/mse/infer", V2_MSE),
    ("POST", "/v2/models/mse/versions/1/infer", V2_MSE),
]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_protected_routes_need_a_valid_key(keyed: TestClient, method, path, body) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "first-key "[:-2]}):
        response = keyed.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        problem = response.json()
        assert problem["type"] == "/problems/unauthorized"
        assert ("Authorization: Bearer" in problem["detail"]) == (headers == {})
        if path.startswith("/v2"):
            assert problem["error"] == problem["detail"]  # the protocol's member
    for headers in (
        {"Authorization": "Bearer second-key"},
        {"authorization": "bearer first-key"},
        {"X-API-Key": "first-key"},
    ):
        response = keyed.request(method, path, json=body, headers=headers)
        assert response.status_code == 200, (headers, response.text)


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/metrics"]
)
def test_health_and_metrics_stay_open(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_keys_off_by_default(client: TestClient) -> None:
    assert client.post("/v1/losses/mse", json=MSE_BODY).status_code == 200


def test_keys_from_the_environment_split_on_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOSS_SERVICE_API_KEYS", " a1 ,b2,, ")
    assert Settings().api_keys == ("a1", "b2")


# ---- request ids, access logs ------------------------------------------------------------------


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.post("/v1/losses/mse", json=MSE_BODY, headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    for headers in ({}, {"X-Request-ID": "has spaces"}, {"X-Request-ID": "x" * 200}):
        for response in (
            client.post("/v1/losses/mse", json=MSE_BODY, headers=headers),
            client.get("/no/such/route", headers=headers),
            client.post("/v1/losses/mse", content=b"{", headers=headers),
        ):
            assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_one_json_access_line_per_request_without_tensor_contents(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"predictions": [1234.5678, 2.0], "targets": [8765.4321, 2.0]}
    with caplog.at_level(logging.INFO, logger="service.access"):
        response = client.post(
            "/v1/losses/mean_squared_error", json=body, headers={"X-Request-ID": "abc-1"}
        )
    records = [record for record in caplog.records if record.name == "service.access"]
    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["request_id"] == "abc-1" == response.headers["x-request-id"]
    assert entry["route"] == "/v1/losses/{name}"
    assert entry["loss"] == "mse"  # the alias resolved
    assert entry["status"] == 200
    assert entry["request_bytes"] == len(response.request.content)
    assert entry["response_bytes"] == len(response.content)
    assert entry["duration_ms"] > 0
    assert "1234.5678" not in line and "8765.4321" not in line


# ---- metrics -----------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_loss_and_status() -> None:
    app = create_app(warm=lambda: 0)
    with TestClient(app, raise_server_exceptions=False) as client:
        before = client.get("/metrics").text

        def count(**labels: str) -> float:
            try:
                return sample(client.get("/metrics").text, "loss_service_requests_total", **labels)
            except AssertionError:
                return 0.0

        base_ok = count(route="/v1/losses/{name}", loss="mse", method="POST", status="200")
        base_bad = count(route="/v1/losses/{name}", loss="mse", method="POST", status="422")
        base_unmatched = count(route="unmatched", status="404")
        for _ in range(3):
            assert client.post("/v1/losses/mean_squared_error", json=MSE_BODY).status_code == 200
        assert client.post("/v1/losses/mse", json={"predictions": [1]}).status_code == 422
        assert client.get("/nowhere/at/all").status_code == 404
        text = client.get("/metrics").text
    assert "loss_service_build_info{" in before
    ok = sample(text, "loss_service_requests_total", route="/v1/losses/{name}", loss="mse",
                method="POST", status="200")  # fmt: skip
    assert ok - base_ok == 3
    bad = sample(text, "loss_service_requests_total", route="/v1/losses/{name}", loss="mse",
                 status="422")  # fmt: skip
    assert bad - base_bad == 1
    assert sample(text, "loss_service_requests_total", route="unmatched", status="404") == (
        base_unmatched + 1
    )
    assert sample(text, "loss_service_request_duration_seconds_count",
                  route="/v1/losses/{name}", loss="mse") >= 4  # fmt: skip
    assert sample(text, "loss_service_request_size_bytes_count", route="/v1/losses/{name}") >= 4
    assert sample(text, "loss_service_kernel_duration_seconds_count", loss="mse") >= 3
    assert sample(text, "loss_service_requests_in_flight") == 0


# ---- overload ----------------------------------------------------------------------------------


def test_past_max_in_flight_a_503_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()
    real = pipeline.decode_and_run

    def held(*args):
        entered.set()
        assert release.wait(timeout=30)
        return real(*args)

    monkeypatch.setattr(pipeline, "decode_and_run", held)
    app = create_app(Settings(max_in_flight=1, retry_after_seconds=7), warm=lambda: 0)
    with TestClient(app, raise_server_exceptions=False) as client:
        first: dict = {}
        thread = threading.Thread(
            target=lambda: first.update(r=client.post("/v1/losses/mse", json=MSE_BODY))
        )
        thread.start()
        assert entered.wait(timeout=30)
        refused = client.post("/v1/losses/mse", json=MSE_BODY)
        refused_v2 = client.post("/v2/models/mse/infer", json=V2_MSE)
        health = client.get("/healthz")
        release.set()
        thread.join(timeout=30)
        after = client.post("/v1/losses/mse", json=MSE_BODY)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "7"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/overloaded"
    assert "LOSS_SERVICE_MAX_IN_FLIGHT" in refused.json()["detail"]
    assert refused_v2.status_code == 503 and "error" in refused_v2.json()
    assert health.status_code == 200  # health is never admitted against the bound
    assert first["r"].status_code == 200
    assert after.status_code == 200


def test_bodies_past_the_in_flight_byte_budget_get_a_503() -> None:
    app = create_app(Settings(max_in_flight_bytes=100), warm=lambda: 0)
    small = {"predictions": [1.0], "targets": [2.0]}
    large = {"predictions": [1.0] * 40, "targets": [2.0] * 40}
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/losses/mse", json=large)
        assert response.status_code == 503, response.text
        assert "LOSS_SERVICE_MAX_IN_FLIGHT_BYTES" in response.json()["detail"]
        # Reservations are released: the budget is whole again afterwards.
        for _ in range(5):
            assert client.post("/v1/losses/mse", json=small).status_code == 200
        assert app.state.pipeline.admission.bytes == 0
        assert app.state.pipeline.admission.requests == 0


# ---- the element limit before allocation ---------------------------------------------------------


def test_element_budget_refuses_before_converting() -> None:
    budget = ElementBudget(10)

    def must_not_run(value):
        raise AssertionError("converted although over the limit")

    budget.take([[1.0] * 5, [2.0] * 5], np.asarray)  # 10: at the limit
    with pytest.raises(PayloadTooLarge):
        budget.take([0.5], must_not_run)
    with pytest.raises(PayloadTooLarge):
        ElementBudget(10).take([[[1.0] * 2] * 3] * 2 + [[[1.0] * 2] * 3], must_not_run)


def test_nested_size_reads_the_shape_along_first_entries() -> None:
    assert codec.nested_size([[1, 2, 3], [4, 5, 6]]) == 6
    assert codec.nested_size([]) == 0
    assert codec.nested_size([[]]) == 0
    assert codec.nested_size(3.5) == 1
    assert codec.nested_size(np.zeros((4, 5))) == 20


# ---- chunked encoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(70_000,), (300, 300), (3, 70_000), (200_000, 2), (2, 3, 40_000), (65_537, 1)]
)
def test_chunked_encoding_is_byte_identical_to_one_orjson_call(shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(7).normal(size=shape)
    payload = {
        "cost": 0.5,
        "gradient": array,
        "per_sample": array.reshape(-1)[:3],
        "terms": {"loss-service-block-0": {"gradient": array}},
        "label": '"loss-service-block-"',
    }
    encoded = codec.encode(payload)
    assert isinstance(encoded, Pieces)  # every shape here has a large array
    assert len(encoded) == len(expected := orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY))
    batches = list(encoded.batches())
    assert b"".join(batches) == expected
    assert all(len(batch) >= Pieces.BATCH_BYTES for batch in batches[:-1])
    assert list(encoded.batches()) == [], "each piece is let go once taken"
