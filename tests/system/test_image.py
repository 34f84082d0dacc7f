"""The image built and run for real (``make image-test``): on the registry-free stand-in base
(deploy/standin/build.sh), under a Docker engine that tests/system/docker_engine.py finds or
starts.

One container started as docker-compose.yml starts a replica (read-only root, no capabilities,
an init, a tmpfs /tmp, an anonymous volume on the numba cache): ready from the image's baked
numba cache without compiling, uid 10001, nothing writable but its volume and tmpfs, a scoring
request's exact numbers, the HEALTHCHECK turning healthy, SIGTERM draining an in-flight request
and exiting. Then the compose topology: three replicas behind the nginx stand-in (HTTP, and the
gRPC calls docker-compose.yml shows), one killed under load, no failed request and the numbers
of a direct answer.

The compose topology is driven with ``docker run`` on a user-defined network, not with Compose:
Debian's docker-compose (1.29) refuses the file as written (``healthcheck.start_interval`` is
Compose v2's), and Debian's nginx (1.22) lacks ``resolve`` on upstream servers (nginx >=
1.27.3), so the stand-in's nginx.conf names the three replicas, each on a fixed address that
its restart keeps. Every other setting is read from docker-compose.yml and nginx.conf.

Skips, saying why, unless ``RUN_IMAGE_TESTS=1`` (make image-test) and a Docker engine can be had.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

from bench.container import NATIVE_ENV, Service, kernel_times, request_body
from service.losses.registry import REGISTRY
from tests.support.mse import MSE_BODY, MSE_EXPECTED
from tests.support.waiting import wait_for
from tests.system import cluster
from tests.system.browser import check_redoc, check_swagger_ui, needs_chromium
from tests.system.cluster import Load, scoring_requests
from tests.system.deployment import COMPOSE, compose_environment, grpcurl_calls, seconds
from tests.system.docker_engine import (
    IMAGE,
    PREFIX,
    STANDIN_NGINX,
    Built,
    Engine,
    build_images,
    docker_engine,
)
from tests.system.grpc_calls import (
    call_json,
    check_example_answer,
    listed_services,
)
from tests.system.nginx_conf import NGINX_CONF, replace_once
from tests.system.server import clean_env, free_port, running

pytestmark = pytest.mark.system

READY_TIMEOUT = 60.0
HEALTHY_TIMEOUT = 90.0  # start period 30 s, a check every 10 s
STOP_TIMEOUT = 45.0
REQUEST_TIMEOUT = 60.0
APP_UID = 10001

# The container as docker-compose.yml runs a replica.
HARDENING = (
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges:true",
    "--init",
    "--tmpfs=/tmp",
    "--mount=type=volume,target=/var/cache/numba",
)

# The shared weighted mse request (tests/support/mse.py, worked out by hand there).
MSE_ANSWER = {**MSE_EXPECTED, "extras": {}}


def request(
    host: str, port: int, method: str, path: str, body: object = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """cluster.request at ``host``, a body other than bytes sent as JSON."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    return cluster.request(port, method, path, data, timeout, host=host)


def answers(host: str, port: int, path: str) -> bool:
    try:
        return request(host, port, "GET", path, timeout=2.0)[0] == 200
    except OSError:
        return False


def published(engine: Engine, name: str, port: int) -> int:
    shown = engine.run("port", name, f"{port}/tcp").stdout.split()[0]
    return int(shown.rpartition(":")[2])


def logs(engine: Engine, name: str) -> str:
    result = engine.run("logs", name, check=False)
    return result.stdout + result.stderr


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """What the run measured, printed at the end of the module (README's Docker section)."""
    found: dict[str, object] = {}
    yield found
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and found:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for name, value in found.items():
                reporter.write_line(f"image figures: {name} = {value}")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with docker_engine(tmp_path_factory.mktemp("docker")) as running_engine:
        yield running_engine


@pytest.fixture(scope="module")
def built(engine: Engine, figures: dict[str, object]) -> Built:
    result = build_images(engine)
    figures["stand-in bases, built or kept (s)"] = round(result.standin_seconds, 1)
    figures["image build, no cache (s)"] = round(result.build_seconds, 1)
    figures["image size (MB)"] = round(result.size_bytes / 1e6)
    return result


@dataclass
class Container:
    name: str
    port: int  # HTTP, published on 127.0.0.1
    ready_seconds: float  # from `docker run` to /readyz 200


@pytest.fixture(scope="module")
def container(engine: Engine, built: Built, figures: dict[str, object]) -> Container:
    name = f"{PREFIX}one"
    start = time.monotonic()
    engine.run(
        "run",
        "-d",
        f"--name={name}",
        *HARDENING,
        "--publish=127.0.0.1::8000",
        "--env=NUMBA_DEBUG_CACHE=1",  # numba says each cache file it loads, or saves
        IMAGE,
    )
    port = published(engine, name, 8000)
    ok = wait_for(lambda: answers("127.0.0.1", port, "/readyz"), READY_TIMEOUT, 0.05)
    ready = time.monotonic() - start
    assert ok, f"not ready in {READY_TIMEOUT:.0f} s:\n{logs(engine, name)[-3000:]}"
    figures["ready after docker run (s)"] = round(ready, 2)
    return Container(name, port, ready)


# ---- one container ----------------------------------------------------------------------------


def test_ready_from_the_baked_cache_without_compiling(engine: Engine, container: Container) -> None:
    output = logs(engine, container.name)
    loaded = re.findall(r"\[cache\] data loaded from", output)
    saved = re.findall(r"\[cache\] data saved to .*", output)
    assert loaded, f"numba loaded nothing from its cache:\n{output[-3000:]}"
    assert saved == [], f"kernels compiled at start (the baked cache missed): {saved[:5]}"
    assert re.search(r"ready: \d+ losses warm in", output), output[-2000:]
    assert container.ready_seconds < 10, f"ready {container.ready_seconds:.1f} s after docker run"


def test_runs_as_uid_10001_without_capabilities(engine: Engine, container: Container) -> None:
    assert engine.inspect(container.name, "{{.Config.User}}") == f"{APP_UID}:{APP_UID}"
    # Every process of the container (the init, the server, this probe): uid and capabilities.
    probe = (
        "import glob\n"
        "for path in glob.glob('/proc/[0-9]*/status'):\n"
        "    try: fields = dict(l.split(':', 1) for l in open(path))\n"
        "    except OSError: continue\n"
        "    print(fields['Name'].strip(), fields['Uid'].split()[:2], fields['CapEff'].strip(),"
        " fields['CapPrm'].strip())\n"
    )
    shown = engine.run("exec", container.name, "python", "-c", probe).stdout.splitlines()
    assert len(shown) >= 2, shown  # docker-init and python at least
    for line in shown:
        _name, rest = line.split(" ", 1)
        assert f"['{APP_UID}', '{APP_UID}']" in rest, line
        assert rest.endswith("0000000000000000 0000000000000000"), line


def test_root_filesystem_is_read_only(engine: Engine, container: Container) -> None:
    assert engine.inspect(container.name, "{{.HostConfig.ReadonlyRootfs}}") == "true"
    probe = (
        "import errno, sys\n"
        "for path in sys.argv[1:]:\n"
        "    try: open(path + '/probe', 'w').close(); print(path, 'writable')\n"
        "    except OSError as e: print(path, errno.errorcode[e.errno])\n"
    )
    paths = ["/opt/venv", "/app", "/etc", "/var/cache/numba", "/tmp"]
    shown = engine.run("exec", container.name, "python", "-c", probe, *paths).stdout.split("\n")
    states = dict(line.split(" ", 1) for line in shown if line)
    assert states == {
        "/opt/venv": "EROFS",
        "/app": "EROFS",
        "/etc": "EROFS",
        "/var/cache/numba": "writable",  # the volume numba needs
        "/tmp": "writable",  # the tmpfs
    }, states


def test_a_scoring_request_has_the_exact_numbers(container: Container) -> None:
    status, body = request("127.0.0.1", container.port, "POST", "/v1/losses/mse", MSE_BODY)
    assert status == 200, body[:500]
    assert json.loads(body) == MSE_ANSWER


def test_the_healthcheck_turns_healthy(
    engine: Engine, container: Container, figures: dict[str, object]
) -> None:
    start = time.monotonic()
    ok = wait_for(
        lambda: engine.inspect(container.name, "{{.State.Health.Status}}") == "healthy",
        HEALTHY_TIMEOUT,
        0.5,
    )
    state = engine.inspect(container.name, "{{json .State.Health}}")
    assert ok, f"not healthy in {HEALTHY_TIMEOUT:.0f} s: {state}"
    figures["healthy after ready (s, checks every 10 s)"] = round(time.monotonic() - start, 1)
    assert json.loads(state)["Log"][-1]["ExitCode"] == 0


#: A branchy loss (quantile: one of two slopes per entry; 8-10x slower from the generic cache)
#: and an exp-bound one (log_cosh).
KERNEL_LOSSES = ("quantile", "log_cosh")
KERNEL_ROUNDS = 61
#: Prediction entries per request: inputs and output (480 KB) fit in a core's L2 cache, so what
#: compares is the compiled code. At 100,000 entries (2.4 MB, in the L3 cache this machine's
#: other tenants share) the memory-bound kernels' ~65 us varied by up to 25% between processes
#: and runs, a second native process included, either way round; bench/container.py gives
#: every loss at larger sizes (README, Docker).
KERNEL_ENTRIES = 20_000


@pytest.fixture
def host_network_container(engine: Engine, built: Built) -> Iterator[int]:
    """The image, hardened as a replica, on the host's network: HTTP on a free 127.0.0.1 port,
    reached without Docker's userland proxy."""
    name, port = f"{PREFIX}kernels", free_port()
    engine.run(
        "run",
        "-d",
        f"--name={name}",
        *HARDENING,
        "--network=host",
        f"--env=LOSS_SERVICE_PORT={port}",
        "--env=LOSS_SERVICE_GRPC_PORT=0",
        "--env=LOSS_SERVICE_LOG_LEVEL=warning",
        IMAGE,
        *("python", "-m", "service", "--host", "127.0.0.1"),
    )
    try:
        ok = wait_for(lambda: answers("127.0.0.1", port, "/readyz"), READY_TIMEOUT, 0.05)
        assert ok, f"not ready in {READY_TIMEOUT:.0f} s:\n{logs(engine, name)[-3000:]}"
        yield port
    finally:
        engine.run("rm", "-f", "-v", name, check=False)


def test_kernel_time_in_the_container_is_within_10_percent_of_native(
    container: Container, host_network_container: int, figures: dict[str, object]
) -> None:
    """The service's own kernel metric, the image against a native ``python -m service`` (numba
    compiling for this machine) in the same run: requests alternate between them (the
    machine's speed drifts), each one's kernel time read from the metric around it
    (bench/container.py); the medians compare.

    Checked on a container on the host's network. Behind a published port, Docker's userland
    proxy (a Go process) relays each body and competes for these two cores while the kernel
    runs: quantile's ~25 us came out 1.00-1.07x there, and up to 1.11x at 100,000 entries
    (1.00-1.04x on the host's network). That figure is reported beside, not checked: it is
    the proxy's, not the image's."""
    port = free_port()
    with running(
        ["--host", "127.0.0.1", "--port", str(port)],  # after `python -m service`
        clean_env(**NATIVE_ENV),
    ) as server:
        assert wait_for(lambda: answers("127.0.0.1", port, "/readyz"), 180, 0.1), server.output()
        services = [
            Service("native", "127.0.0.1", port),
            Service("container", "127.0.0.1", host_network_container),
            Service("published", "127.0.0.1", container.port),
        ]
        rng = np.random.default_rng(0)
        times = {
            loss: kernel_times(
                services, loss, request_body(REGISTRY[loss], KERNEL_ENTRIES, rng)[0], KERNEL_ROUNDS
            )
            for loss in KERNEL_LOSSES
        }
    ratios = {loss: t.median("container") / t.median("native") for loss, t in times.items()}
    figures["kernel median ms, native / container (ratio) / behind a published port (ratio)"] = {
        loss: f"{t.median('native') * 1e3:.3f} / {t.median('container') * 1e3:.3f} "
        f"({ratios[loss]:.2f}x) / {t.median('published') * 1e3:.3f} "
        f"({t.median('published') / t.median('native'):.2f}x)"
        for loss, t in times.items()
    }
    slow = {loss: round(ratio, 2) for loss, ratio in ratios.items() if ratio > 1.1}
    assert slow == {}, f"container / native kernel time above 1.1: {slow} ({times})"


@needs_chromium
def test_docs_render_every_operation_offline(container: Container, tmp_path: Path) -> None:
    """/docs and /redoc of the image (its pinned assets, as installed from the lock) in headless
    Chromium with no network: every operation of the container's own document, and no request
    for anything but the container's assets (tests/system/browser.py)."""
    status, body = request("127.0.0.1", container.port, "GET", "/openapi.json")
    assert status == 200
    document = json.loads(body)
    base = f"http://127.0.0.1:{container.port}"
    check_swagger_ui(base, document, tmp_path / "swagger")
    check_redoc(base, document, tmp_path / "redoc")


def test_sigterm_drains_an_in_flight_request_and_exits(
    engine: Engine, container: Container, figures: dict[str, object]
) -> None:
    rows = 150_000
    heavy = {
        "predictions": [[(i % 97) / 10.0] * 16 for i in range(rows)],
        "targets": [[(i % 89) / 10.0] * 16 for i in range(rows)],
        "include": ["cost", "per_sample"],
    }
    body = json.dumps(heavy).encode()
    result: dict[str, object] = {}

    def send() -> None:
        try:
            result["answer"] = request(
                "127.0.0.1", container.port, "POST", "/v1/losses/log_cosh", body, REQUEST_TIMEOUT
            )
        except OSError as error:
            result["error"] = error

    def in_flight() -> bool:
        status, text = request("127.0.0.1", container.port, "GET", "/metrics")
        found = re.search(r"^loss_service_requests_in_flight (\S+)$", text.decode(), re.M)
        return status == 200 and found is not None and float(found.group(1)) > 0

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    assert wait_for(in_flight, 30, 0.01), "the request never showed in flight"
    start = time.monotonic()
    engine.run("kill", "--signal=SIGTERM", container.name)
    code = engine.run("wait", container.name, timeout=STOP_TIMEOUT).stdout.strip()
    stopped = time.monotonic() - start
    thread.join(REQUEST_TIMEOUT)
    output = logs(engine, container.name)
    # uvicorn re-raises the SIGTERM once it has shut down (as test_shutdown.py sees natively):
    # the init passes that on as 128 + 15. Either way after a complete shutdown, never a
    # SIGKILL (137).
    assert code in ("0", str(128 + signal.SIGTERM)), f"exit {code}:\n{output[-3000:]}"
    assert "Finished server process" in output, output[-3000:]
    assert "error" not in result, f"{result['error']}\n{output[-3000:]}"
    status, answer = result["answer"]
    assert status == 200, answer[:300]
    assert json.loads(answer)["count"] == rows
    figures["SIGTERM to exit, one request in flight (s)"] = round(stopped, 2)


# ---- the compose topology ---------------------------------------------------------------------

SUBNET = "172.31.250.0/24"
REPLICA_IPS = ("172.31.250.11", "172.31.250.12", "172.31.250.13")
NGINX_IP = "172.31.250.10"
REQUESTS_BEFORE_KILL = 20
REQUESTS_AFTER_KILL = 30
REQUESTS_AFTER_RESTART = 20
LOAD_TIMEOUT = 120.0
LOAD_THREADS = 6


def replica_run_args(service: dict) -> list[str]:
    """docker-compose.yml's loss-service as `docker run` options (all but ports, which it has
    none of, and healthcheck.start_interval, Compose v2 and Engine >= 25)."""
    args = [f"--env={name}={value}" for name, value in compose_environment(service).items()]
    check = service["healthcheck"]
    assert check["test"][0] == "CMD"
    args += [
        # docker run has only the shell form (CMD-SHELL); the same words.
        f"--health-cmd={shlex.join(check['test'][1:])}",
        f"--health-interval={check['interval']}",
        f"--health-timeout={check['timeout']}",
        f"--health-retries={check['retries']}",
        f"--health-start-period={check['start_period']}",
        f"--restart={service['restart']}",
        f"--stop-timeout={int(seconds(service['stop_grace_period']))}",
    ]
    assert service["init"] is True and service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert service["tmpfs"] == ["/tmp"]
    assert [v["target"] for v in service["volumes"]] == ["/var/cache/numba"]
    args += list(HARDENING)
    args += [f"--security-opt={option}" for option in service["security_opt"]]
    limits = service["deploy"]["resources"]["limits"]
    args += [f"--cpus={limits['cpus']}", f"--memory={limits['memory']}"]
    return args


def standin_nginx_conf(replicas: list[str]) -> str:
    """deploy/nginx/nginx.conf for Debian's nginx 1.22: each upstream lists the replicas by name
    (no `resolve`, nginx >= 1.27.3), `listen 8001 http2` (`http2 on` is >= 1.25.1), and Debian's
    worker user (the official image's `nginx` user does not exist there)."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    for port in (8000, 8001):
        servers = "\n        ".join(
            f"server {name}:{port} max_fails=2 fail_timeout=5s;" for name in replicas
        )
        text = replace_once(
            text, rf"server loss-service:{port} resolve max_fails=2 fail_timeout=5s;", servers
        )
    text = replace_once(text, r"listen 8001;\s*http2 on;", "listen 8001 http2;")
    return "user www-data;\n" + text


def grpc_through_nginx(port: int) -> None:
    """The grpcurl calls shown at the top of docker-compose.yml, through nginx's gRPC port."""
    examples = grpcurl_calls(COMPOSE.read_text(encoding="utf-8"))
    assert examples, "docker-compose.yml shows no grpcurl call"
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        for example in examples:
            if example.method == "list":
                services = set(listed_services(channel))
                assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= services
                continue
            answer = call_json(channel, example.method, example.data, REQUEST_TIMEOUT)
            check_example_answer(example.method, answer)


def service_child(engine: Engine, name: str) -> int:
    """The host pid of the server process: the child of the container's init."""
    init = int(engine.inspect(name, "{{.State.Pid}}"))
    children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
    assert len(children) == 1, f"{name}: init's children {children}"
    return int(children[0])


def test_compose_topology_hides_a_killed_replica(
    engine: Engine,
    built: Built,
    compose_service: dict,
    compose_nginx: dict,
    tmp_path: Path,
    figures: dict[str, object],
) -> None:
    network = f"{PREFIX}net"
    engine.run("network", "create", f"--subnet={SUBNET}", network)
    replicas = [f"{PREFIX}replica-{i + 1}" for i in range(3)]
    options = replica_run_args(compose_service)
    for name, address in zip(replicas, REPLICA_IPS, strict=True):
        engine.run(
            "run", "-d", f"--name={name}", f"--network={network}", f"--ip={address}",
            "--network-alias=loss-service", *options, IMAGE,
        )  # fmt: skip
    # depends_on: condition: service_healthy
    for name in replicas:
        ok = wait_for(
            lambda name=name: engine.inspect(name, "{{.State.Health.Status}}") == "healthy",
            HEALTHY_TIMEOUT,
            0.5,
        )
        assert ok, f"{name} not healthy:\n{logs(engine, name)[-3000:]}"

    conf = tmp_path / "nginx.conf"
    conf.write_text(standin_nginx_conf(replicas), encoding="utf-8")
    conf.chmod(0o644)
    nginx = f"{PREFIX}nginx"
    assert compose_nginx["read_only"] is True and compose_nginx["cap_drop"] == ["ALL"]
    engine.run(
        "run", "-d", f"--name={nginx}", f"--network={network}", f"--ip={NGINX_IP}",
        "--read-only", "--tmpfs=/tmp", "--mount=type=volume,target=/var/cache/nginx",
        f"--mount=type=bind,source={conf},target=/etc/nginx/nginx.conf,readonly",
        "--cap-drop=ALL", *[f"--cap-add={cap}" for cap in compose_nginx["cap_add"]],
        *[f"--security-opt={option}" for option in compose_nginx["security_opt"]],
        f"--stop-signal={compose_nginx['stop_signal']}", f"--restart={compose_nginx['restart']}",
        "--publish=127.0.0.1::8000", "--publish=127.0.0.1::8001", STANDIN_NGINX,
    )  # fmt: skip
    port = published(engine, nginx, 8000)
    assert wait_for(lambda: answers("127.0.0.1", port, "/nginx-health"), 20, 0.1), logs(
        engine, nginx
    )[-3000:]
    grpc_through_nginx(published(engine, nginx, 8001))

    # The direct answers: each request sent to one replica, at its address on the network.
    requests = scoring_requests()
    expected = []
    for path, body in requests:
        status, answer = request(REPLICA_IPS[0], 8000, "POST", path, body, REQUEST_TIMEOUT)
        assert status == 200, answer[:300]
        expected.append(json.loads(answer))

    load = Load(port, requests, expected)
    load.start(LOAD_THREADS)
    try:
        assert wait_for(lambda: load.count() >= REQUESTS_BEFORE_KILL, LOAD_TIMEOUT), load.failures
        victim = replicas[1]
        restarts = int(engine.inspect(victim, "{{.RestartCount}}"))
        os.kill(service_child(engine, victim), signal.SIGKILL)  # a crash, the OOM killer
        killed_at = load.count()
        assert wait_for(lambda: load.count() >= killed_at + REQUESTS_AFTER_KILL, LOAD_TIMEOUT)
        # restart: unless-stopped brings it back, at the same address.
        assert wait_for(
            lambda: int(engine.inspect(victim, "{{.RestartCount}}")) > restarts, 60, 0.2
        ), engine.inspect(victim, "{{json .State}}")
        assert wait_for(lambda: answers(REPLICA_IPS[1], 8000, "/readyz"), READY_TIMEOUT, 0.1)
        back_at = load.count()
        assert wait_for(lambda: load.count() >= back_at + REQUESTS_AFTER_RESTART, LOAD_TIMEOUT)
    finally:
        load.join()
    access = logs(engine, nginx)
    retried = len(re.findall(r"upstream=[^ ]+, ", access))
    figures["compose failover: requests / failed / cut and sent again / retried by nginx"] = (
        f"{load.ok + len(load.failures)} / {len(load.failures)} / {len(load.cut)} / {retried}"
    )
    assert load.failures == [], (
        f"{len(load.failures)} failed: {load.failures[:5]}\n{access[-3000:]}"
    )
    # Answers the victim was sending when it died (see Load): one kill, so one per thread at most.
    assert len(load.cut) <= LOAD_THREADS, load.cut
    assert load.ok >= REQUESTS_BEFORE_KILL + REQUESTS_AFTER_KILL + REQUESTS_AFTER_RESTART
