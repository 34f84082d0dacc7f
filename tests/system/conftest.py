"""Fixtures of the system tests: the parsed deployment files (Dockerfile stages, compose
services, Kubernetes manifests) and the settings a replica or a pod would start with.
"""

from __future__ import annotations

import pytest
import yaml

from service.ops.settings import Settings, get_settings
from tests.system.deployment import (
    COMPOSE,
    DOCKERFILE,
    NGINX_SERVICE,
    SERVICE_NAME,
    Stage,
    compose_environment,
    k8s_documents,
    parse_stages,
    validated_settings,
)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_stages(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


def exposed_ports(runtime: Stage) -> list[int]:
    """The image's EXPOSE ports: HTTP, then gRPC (both TCP)."""
    ports = [word for i in runtime.all("EXPOSE") for word in i.args.split()]
    assert len(ports) == 2, f"EXPOSE the HTTP port, then the gRPC port; got {ports}"
    numbers = []
    for port in ports:
        number, _, protocol = port.partition("/")
        assert protocol in ("", "tcp")
        numbers.append(int(number))
    return numbers


@pytest.fixture(scope="module")
def exposed_port(runtime: Stage) -> int:
    return exposed_ports(runtime)[0]


@pytest.fixture(scope="module")
def exposed_grpc_port(runtime: Stage) -> int:
    return exposed_ports(runtime)[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose_service(compose: dict) -> dict:
    assert SERVICE_NAME in compose["services"], list(compose["services"])
    return compose["services"][SERVICE_NAME]


@pytest.fixture(scope="module")
def compose_nginx(compose: dict) -> dict:
    assert NGINX_SERVICE in compose["services"], list(compose["services"])
    return compose["services"][NGINX_SERVICE]


@pytest.fixture
def fresh_settings():
    """Settings are cached per process: read them again from the environment this test sets."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def service_settings(
    compose_service: dict, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> Settings:
    """The settings of a replica started by docker-compose.yml."""
    return validated_settings(compose_environment(compose_service), monkeypatch)


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict]:
    """kind -> the one manifest of that kind (the example Secret included)."""
    by_kind: dict[str, dict] = {}
    for name, document in k8s_documents():
        assert {"apiVersion", "kind"} <= set(document), name
        kind = document["kind"]
        if kind != "Kustomization":
            assert document.get("metadata", {}).get("name"), f"{name}: {kind} without a name"
        assert kind not in by_kind, f"two {kind} manifests"
        by_kind[kind] = document
    expected = {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "Secret",
        "Kustomization",
    }
    assert expected <= set(by_kind), sorted(by_kind)
    return by_kind


@pytest.fixture(scope="module")
def pod(k8s: dict[str, dict]) -> dict:
    return k8s["Deployment"]["spec"]["template"]


@pytest.fixture(scope="module")
def container(pod: dict) -> dict:
    containers = pod["spec"]["containers"]
    assert len(containers) == 1, [c["name"] for c in containers]
    return containers[0]


@pytest.fixture
def pod_settings(
    k8s: dict[str, dict], monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> Settings:
    return validated_settings(dict(k8s["ConfigMap"]["data"]), monkeypatch)
