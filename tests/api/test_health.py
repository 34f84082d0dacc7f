"""/healthz and /readyz through the real app: live at once, ready after warm-up, requests served
while warm-up runs, and a failed warm-up that stays not ready without showing its exception.
"""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.app import create_app
from tests.api.examples import (
    MSE_WEIGHTED_BODY,
    MSE_WEIGHTED_RESULT,
)
from tests.api.helpers import (
    assert_result,
    ok_result,
)


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_readyz_after_warm_up(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_readiness_waits_for_warm_up_while_requests_are_served() -> None:
    release = threading.Event()

    def blocked_warm_up() -> int:
        release.wait(timeout=60)  # the timeout only guards against a hung test run
        return 0

    app = create_app(warm=blocked_warm_up)
    with TestClient(app, raise_server_exceptions=False) as early_client:
        try:
            assert early_client.get("/readyz").status_code == 503
            assert early_client.get("/healthz").status_code == 200
            # "A request that arrives first is still served correctly."
            early = ok_result(early_client.post("/v1/losses/mse", json=MSE_WEIGHTED_BODY))
            assert_result(early, MSE_WEIGHTED_RESULT)
            assert not app.state.readiness.done.is_set()
            assert early_client.get("/readyz").status_code == 503
        finally:
            release.set()
        assert app.state.readiness.done.wait(timeout=30)
        response = early_client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["status"] == "ready"


def test_failed_warm_up_stays_not_ready_and_hides_the_exception() -> None:
    def failing_warm_up() -> int:
        raise RuntimeError("secret-cache-path /var/kernels is corrupt")

    app = create_app(warm=failing_warm_up)
    with TestClient(app, raise_server_exceptions=False) as failed_client:
        assert app.state.readiness.done.wait(timeout=30)
        response = failed_client.get("/readyz")
        assert response.status_code == 503
        for internal in ("secret-cache-path", "/var/kernels", "RuntimeError", "Traceback"):
            assert internal not in response.text
        assert failed_client.get("/healthz").status_code == 200
        still_served = ok_result(failed_client.post("/v1/losses/mse", json=MSE_WEIGHTED_BODY))
        assert_result(still_served, MSE_WEIGHTED_RESULT)
