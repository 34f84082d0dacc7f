"""Fixtures of the API tests: the catalogue and the OpenAPI document, fetched once through the
real app (the ``client`` fixture of tests/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


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
