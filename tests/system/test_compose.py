"""docker-compose.yml, checked without a Docker engine: the build, the healthcheck, three
replicas behind nginx, the settings each replica starts with, stop grace and writable paths.
"""

from __future__ import annotations

import re

import pytest
from google.protobuf import json_format

from service.ops.settings import Settings
from tests.support.paths import ROOT
from tests.system.deployment import (
    COMPOSE,
    DOCKERFILE,
    REPLICAS,
    SERVICE_NAME,
    SETTINGS_PREFIX,
    Stage,
    compose_environment,
    grpcurl_calls,
    mounts,
    parse_healthcheck,
    published_targets,
    seconds,
)
from tests.system.grpc_calls import method_types
from tests.system.nginx_conf import (
    GRPC_PORT,
    HTTP_PORT,
    NGINX_CONF,
    NGINX_HEALTH,
    nginx_http,
    nginx_listen_port,
    nginx_servers,
    one,
    parse_nginx,
    upstream_servers,
)

pytestmark = pytest.mark.system


def test_compose_builds_this_dockerfile(compose_service: dict) -> None:
    build = compose_service["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = ROOT / build.get("context", ".")
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE.resolve()


def test_compose_healthcheck_is_the_images(compose_service: dict, runtime: Stage) -> None:
    image_check = parse_healthcheck(runtime.last("HEALTHCHECK").args)
    compose_check = compose_service["healthcheck"]
    assert compose_check["test"] == ["CMD", *image_check.command]
    start_period = seconds(compose_check["start_period"])
    assert start_period >= seconds(image_check.options["start-period"])
    assert start_period >= 20, "covers a cold warm-up (numba compiling every kernel)"
    assert 0 < seconds(compose_check["timeout"]) < seconds(compose_check["interval"])
    if "start_interval" in compose_check:
        assert seconds(compose_check["start_interval"]) <= seconds(compose_check["interval"])


def test_compose_runs_three_replicas_behind_nginx(
    compose_service: dict, compose_nginx: dict, exposed_port: int
) -> None:
    assert "container_name" not in compose_service, "a fixed name allows one container only"
    assert compose_service.get("deploy", {}).get("replicas") == REPLICAS
    assert compose_service.get("restart") in ("always", "unless-stopped", "on-failure")
    # Only nginx is published: a fixed host port on the replicas would collide between them.
    assert published_targets(compose_service) == [], "the replicas publish no host port"
    env = compose_environment(compose_service)
    assert int(env.get(f"{SETTINGS_PREFIX}PORT", exposed_port)) == exposed_port
    assert compose_nginx.get("depends_on", {}).get(SERVICE_NAME) == {
        "condition": "service_healthy"
    }, "nginx starts once every replica is ready"
    assert compose_nginx.get("restart") in ("always", "unless-stopped", "on-failure")


def test_compose_nginx_is_pinned_and_recent_enough_for_resolve(compose_nginx: dict) -> None:
    image = compose_nginx["image"]
    match = re.fullmatch(
        r"nginx:(\d+)\.(\d+)\.(\d+)(-alpine|-bookworm)?(@sha256:[0-9a-f]{64})?", image
    )
    assert match, f"{image}: want the official image at a pinned x.y.z tag"
    version = tuple(int(part) for part in match.groups()[:3])
    uses_resolve = any("resolve" in s.args for s in upstream_servers(nginx_http()))
    if uses_resolve:
        assert version >= (1, 27, 3), f"{image}: `server ... resolve` needs nginx >= 1.27.3"


def test_compose_nginx_mounts_the_config_and_publishes_its_port(compose_nginx: dict) -> None:
    found = mounts(compose_nginx)
    config = found.get("/etc/nginx/nginx.conf")
    assert config and config["type"] == "bind", found
    assert (ROOT / config["source"]).resolve() == NGINX_CONF.resolve()
    assert config["read_only"], "the config is mounted read-only"
    # Every port nginx listens on (HTTP, gRPC) is published as itself, and nothing else.
    listens = sorted(nginx_listen_port(server) for server in nginx_servers())
    assert listens == [HTTP_PORT, GRPC_PORT]
    assert sorted(published_targets(compose_nginx)) == [(str(port), port) for port in listens]
    check = compose_nginx.get("healthcheck")
    if check:  # it asks nginx's own location, not a replica
        assert any(NGINX_HEALTH in word for word in check["test"]), check["test"]
        assert 0 < seconds(check["timeout"]) < seconds(check["interval"])


def test_compose_nginx_can_write_what_it_writes(compose_nginx: dict) -> None:
    if not compose_nginx.get("read_only", False):
        return
    found = mounts(compose_nginx)
    writable = [path for path, mount in found.items() if not mount["read_only"]]
    root = parse_nginx(NGINX_CONF.read_text(encoding="utf-8"))
    paths = [one(root, "pid").args[0]]
    paths += [d.args[0] for d in nginx_http().children if d.name.endswith("_temp_path")]
    for path in paths:
        assert any(path.startswith(w.rstrip("/") + "/") for w in writable), (
            f"read_only, and nginx writes {path}; writable mounts: {writable}"
        )


def test_compose_environment_names_real_settings(service_settings: Settings) -> None:
    # The fixture refuses a name that is not a setting and a value the service would not
    # read exactly as written (an empty ${LOSS_SERVICE_API_KEYS:-} is no keys: auth off).
    assert service_settings.api_keys == ()


def test_compose_replicas_serve_grpc_on_the_port_nginx_uses(
    compose_service: dict, service_settings: Settings
) -> None:
    env = compose_environment(compose_service)
    # Explicit, though it is the default: nginx.conf's gRPC upstream depends on it.
    assert f"{SETTINGS_PREFIX}GRPC_PORT" in env
    assert service_settings.grpc_port == GRPC_PORT != service_settings.port


def test_compose_grpcurl_examples_call_real_methods(compose_nginx: dict) -> None:
    """The grpcurl commands at the top of the file: the published gRPC port, methods the
    replicas serve, and JSON that is their request message (tests/system/test_scaleout.py sends
    them through a real nginx)."""
    calls = grpcurl_calls(COMPOSE.read_text(encoding="utf-8"))
    published = [port for port, target in published_targets(compose_nginx) if target == GRPC_PORT]
    assert {call.address for call in calls} == {f"localhost:{published[0]}"}
    methods = [call.method for call in calls]
    assert "inference.GRPCInferenceService/ModelInfer" in methods and "list" in methods, methods
    for call in calls:
        if call.method == "list":
            continue
        request_type, _ = method_types(call.method)  # KeyError: no such method
        json_format.Parse(call.data or "{}", request_type())  # ParseError: no such field


def test_compose_sets_what_a_container_cannot_default(compose_service: dict) -> None:
    env = compose_environment(compose_service)
    wanted = {"WORKERS", "KERNEL_THREADS", "MAX_BODY_BYTES", "KEEPALIVE_SECONDS"}
    assert {f"{SETTINGS_PREFIX}{name}" for name in wanted} <= set(env)
    cpus = compose_service.get("deploy", {}).get("resources", {}).get("limits", {}).get("cpus")
    if cpus is not None:  # threads of all workers within the CPU limit
        workers = int(env[f"{SETTINGS_PREFIX}WORKERS"])
        assert workers * int(env[f"{SETTINGS_PREFIX}KERNEL_THREADS"]) <= float(cpus)


def test_compose_stop_grace_covers_drain_and_graceful_timeout(
    compose_service: dict, service_settings: Settings
) -> None:
    grace = seconds(compose_service["stop_grace_period"])
    assert grace > service_settings.drain_seconds + service_settings.graceful_timeout_seconds


def test_compose_keeps_the_numba_cache_writable(compose_service: dict, runtime: Stage) -> None:
    cache_dir = runtime.env()["LOSS_KERNEL_CACHES"]  # one cache per CPU level under it
    if not compose_service.get("read_only", False):
        return  # the image's own directory is writable by its user
    found = {path: mount["type"] for path, mount in mounts(compose_service).items()}
    # A volume starts as a copy of the image's directory; a tmpfs would hide the baked cache.
    assert found.get(cache_dir) == "volume", f"read_only, and {cache_dir} is {found}"
