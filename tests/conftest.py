"""Shared fixtures: the real ASGI app through Starlette's TestClient, and Hypothesis profiles."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

import service.losses  # noqa: F401  (registers every loss)
from service.app import create_app

# Kernels compile on first use (numba), so no per-example deadline; CI runs a bounded number.
settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", deadline=None, max_examples=400)
settings.load_profile("default")


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    """A client of the real app, lifespan included; waits until warm-up has finished."""
    app = create_app()
    with TestClient(app, raise_server_exceptions=False) as test_client:
        assert app.state.readiness.done.wait(timeout=300), "warm-up did not finish"
        yield test_client
