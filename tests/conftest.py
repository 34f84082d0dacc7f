"""Shared fixtures and settings: the real ASGI app through Starlette's TestClient, and the
Hypothesis profiles.

Hypothesis profiles: ``default`` draws new examples on every run (local runs explore);
``ci``, chosen when the environment variable CI is set (``.ci/run`` runs with CI=true), is the
same but derandomized, so a CI run is reproducible; ``fast`` (``make test-fast``) draws fewer
examples (``fast-ci`` under CI); ``thorough`` many more. ``HYPOTHESIS_PROFILE`` names one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

import service.losses  # noqa: F401  (registers every loss)
from service.app import create_app

# Apps built in this process serve no gRPC unless a test asks (its default port is fixed,
# and tests run side by side); tests of gRPC pass their own port.
os.environ["LOSS_SERVICE_GRPC_PORT"] = "0"

# Kernels compile on first use (numba), so no per-example deadline; CI runs a bounded number.
settings.register_profile(
    "default",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
# In CI the same examples every run (derandomized, no example database), so a failure there
# reproduces; locally new ones every run.
settings.register_profile(
    "ci", settings.get_profile("default"), derandomize=True, database=None, print_blob=True
)
settings.register_profile("fast", settings.get_profile("default"), max_examples=10)
settings.register_profile("fast-ci", settings.get_profile("ci"), max_examples=10)
settings.register_profile("thorough", deadline=None, max_examples=400)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or "default"
if os.environ.get("CI") and PROFILE in ("default", "fast"):
    PROFILE = {"default": "ci", "fast": "fast-ci"}[PROFILE]
settings.load_profile(PROFILE)


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    """A client of the real app, lifespan included; waits until warm-up has finished."""
    app = create_app()
    with TestClient(app, raise_server_exceptions=False) as test_client:
        assert app.state.readiness.done.wait(timeout=300), "warm-up did not finish"
        yield test_client
