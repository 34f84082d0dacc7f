"""The deploy/k8s/ manifests, checked without a cluster: selectors, ports and probes, settings
from the ConfigMap, resources, the autoscaler, pod security and the API-key Secret.
"""

from __future__ import annotations

import pytest

from service.ops.settings import Settings
from tests.system.deployment import (
    K8S,
    K8S_EXAMPLES,
    REPLICAS,
    SETTINGS_PREFIX,
    Stage,
    quantity,
)

pytestmark = pytest.mark.system


def test_k8s_kustomization_applies_every_manifest_but_the_examples(k8s: dict[str, dict]) -> None:
    listed = set(k8s["Kustomization"]["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - K8S_EXAMPLES - {"kustomization.yaml"}
    assert listed == present


def test_k8s_selectors_match_the_pods(k8s: dict[str, dict], pod: dict) -> None:
    labels = pod["metadata"]["labels"]
    selectors = {
        "Deployment": k8s["Deployment"]["spec"]["selector"]["matchLabels"],
        "Service": k8s["Service"]["spec"]["selector"],
    }
    if "PodDisruptionBudget" in k8s:
        selectors["PodDisruptionBudget"] = k8s["PodDisruptionBudget"]["spec"]["selector"][
            "matchLabels"
        ]
    for kind, selector in selectors.items():
        assert selector, f"{kind}: empty selector"
        assert selector.items() <= labels.items(), f"{kind} selects {selector}, pods: {labels}"


def test_k8s_ports_and_probes(
    k8s: dict[str, dict], container: dict, pod_settings: Settings, exposed_port: int
) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": pod_settings.port, "grpc": pod_settings.grpc_port}
    assert pod_settings.port == exposed_port
    service_ports = {entry["name"]: entry for entry in k8s["Service"]["spec"]["ports"]}
    for entry in service_ports.values():
        target = entry["targetPort"]
        assert target in ports or target in ports.values(), f"Service targets {target}"
    grpc = service_ports["grpc"]
    assert grpc["targetPort"] in ("grpc", pod_settings.grpc_port)
    assert grpc["port"] == pod_settings.grpc_port, "Triton's gRPC port, as nginx publishes it"
    # HTTP/2 over cleartext with prior knowledge, the value Kubernetes defines for it.
    assert grpc.get("appProtocol") == "kubernetes.io/h2c"

    def probe(name: str) -> tuple[str, dict]:
        spec = container[name]
        get = spec["httpGet"]
        assert get["port"] in ports or get["port"] in ports.values(), f"{name}: {get['port']}"
        return get["path"], spec

    assert probe("livenessProbe")[0] == "/healthz", "alive: the process serves"
    path, startup = probe("startupProbe")
    assert path in ("/readyz", "/healthz")
    budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    assert budget >= 30, f"the startup probe allows {budget} s: a cold warm-up takes ~20 s"
    liveness = container["livenessProbe"]
    patience = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
    assert patience >= 30, "a busy worker (parsing a large body) must not be restarted"
    # Ready: the native gRPC probe, grpc.health.v1 of the whole server (SERVING exactly when
    # /readyz answers 200: kernels loaded, not draining). Its port must be a number.
    readiness = container["readinessProbe"]
    assert set(readiness) & {"httpGet", "grpc", "tcpSocket", "exec"} == {"grpc"}
    assert readiness["grpc"]["port"] == pod_settings.grpc_port
    assert readiness["grpc"].get("service", "") == "", "the server's overall health"
    # Out of the endpoints by the end of the drain after SIGTERM (at worst the failures start
    # right after a passing check).
    notice = readiness.get("periodSeconds", 10) * readiness.get("failureThreshold", 3)
    assert notice <= pod_settings.drain_seconds


def test_k8s_settings_come_from_the_configmap(
    k8s: dict[str, dict], container: dict, pod_settings: Settings
) -> None:
    names = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    assert names == [k8s["ConfigMap"]["metadata"]["name"]]
    data = k8s["ConfigMap"]["data"]
    assert f"{SETTINGS_PREFIX}API_KEYS" not in data, "API keys belong in a Secret"
    assert f"{SETTINGS_PREFIX}GRPC_PORT" in data, "explicit: the gRPC readiness probe's port"
    for name in ("WORKERS", "KERNEL_THREADS", "COMPUTE_THREADS", "KEEPALIVE_SECONDS"):
        assert f"{SETTINGS_PREFIX}{name}" in data, f"{name}: the default does not fit a pod"
    assert pod_settings.max_body_bytes == 268_435_456


def test_k8s_resources_fit_the_workers(pod: dict, container: dict, pod_settings: Settings) -> None:
    for each in [*pod["spec"].get("initContainers", []), container]:
        resources = each.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{each['name']}: {kind}"
            assert quantity(resources[kind]["cpu"]) > 0
        assert quantity(resources["requests"]["memory"]) <= quantity(resources["limits"]["memory"])
    cpu_limit = quantity(container["resources"]["limits"]["cpu"])
    assert pod_settings.workers * pod_settings.kernel_threads <= cpu_limit
    assert pod_settings.workers * pod_settings.kernel_threads >= cpu_limit / 2, "CPUs left idle"


def test_k8s_hpa_scales_the_deployment_on_cpu(k8s: dict[str, dict]) -> None:
    hpa, deployment = k8s["HorizontalPodAutoscaler"], k8s["Deployment"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert deployment["spec"]["replicas"] == REPLICAS
    assert 2 <= hpa["spec"]["minReplicas"] <= REPLICAS <= hpa["spec"]["maxReplicas"]
    metrics = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert [m["name"] for m in metrics] == ["cpu"]
    assert 0 < metrics[0]["target"]["averageUtilization"] <= 100


def test_k8s_pod_security_and_filesystem(pod: dict, container: dict, runtime: Stage) -> None:
    security = pod["spec"]["securityContext"]
    uid, _, gid = runtime.last("USER").args.partition(":")
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == int(uid)
    if "runAsGroup" in security:
        assert security["runAsGroup"] == int(gid or uid)
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    for each in [*pod["spec"].get("initContainers", []), container]:
        assert each["securityContext"]["allowPrivilegeEscalation"] is False
        for mount in each.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{each['name']} mounts an undeclared volume"
    if not container["securityContext"].get("readOnlyRootFilesystem", False):
        return  # the image's cache directory is writable by its user, prebuilt kernels in it
    cache_dir = runtime.env()["LOSS_KERNEL_CACHES"]  # one cache per CPU level under it
    mounted = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    assert cache_dir in mounted, f"read-only root: numba needs {cache_dir} writable"
    # An empty volume would hide the kernels compiled into the image: something must copy
    # them in first, from the same image.
    seeders = [
        init
        for init in pod["spec"].get("initContainers", [])
        if init["image"] == container["image"]
        and any(m["name"] == mounted[cache_dir] for m in init.get("volumeMounts", []))
        and any(cache_dir in word for word in init.get("command", []) + init.get("args", []))
    ]
    assert seeders, f"nothing seeds the {cache_dir} volume with the image's prebuilt cache"


def test_k8s_termination_grace_covers_drain_and_graceful_timeout(
    pod: dict, pod_settings: Settings
) -> None:
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert pod_settings.drain_seconds > 0, "on SIGTERM, serve while endpoints are updated"
    assert grace > pod_settings.drain_seconds + pod_settings.graceful_timeout_seconds


def test_k8s_api_keys_come_from_the_documented_secret(
    k8s: dict[str, dict], container: dict
) -> None:
    secret = k8s["Secret"]
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if e["name"] == f"{SETTINGS_PREFIX}API_KEYS"
    ]
    assert len(refs) == 1, "LOSS_SERVICE_API_KEYS from a Secret"
    assert refs[0]["name"] == secret["metadata"]["name"]
    assert refs[0]["key"] in secret.get("stringData", {}) | secret.get("data", {})
