"""Scale-out without Docker: three replicas behind nginx, one killed and one restarted under load.

The same topology as docker-compose.yml, on one machine (tests/system/cluster.py). Client
threads send a fixed set of scoring requests through nginx while one replica is killed with
SIGKILL and another is stopped with SIGTERM and started again. Every response must be a 200
whose numbers are exactly the ones a replica returned directly before the run: nginx's retries
(``proxy_next_upstream ... non_idempotent``) and passive health checks must hide both events
from the clients.

gRPC: nginx's second server (HTTP/2, ``grpc_pass``) in front of the replicas' gRPC ports. One
channel sends ``mse`` ModelInfer calls (raw little-endian FP64) through it before and after a
replica is killed: every call is OK with the numbers of a naive numpy ``mse``, and nginx sends
the calls that meet the dead replica's refused connection to another one.

Needs the nginx binary: ``apt-get install -y nginx`` (.ci/run does it when run as root).
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from tests.support.waiting import wait_for
from tests.system.cluster import (
    REQUEST_TIMEOUT,
    Cluster,
    Load,
    access_lines,
    grpc_attempts,
    request,
    retried,
    running_cluster,
    scoring_requests,
    upstream_statuses,
)
from tests.system.deployment import COMPOSE, grpcurl_calls
from tests.system.grpc_calls import (
    call,
    call_json,
    check_example_answer,
    listed_services,
    mse_request,
    naive_mse,
    outputs,
)
from tests.system.nginx_conf import replace_once

pytestmark = pytest.mark.system
CLIENT_THREADS = 6
# Each phase of the load runs until the clients have sent this many more requests (a count, not
# a time), within LOAD_TIMEOUT.
REQUESTS_BEFORE_KILL = 20  # through all three replicas before the first event
REQUESTS_AFTER_KILL = 20  # with one replica dead: nginx meets it and retries
REQUESTS_WHILE_STOPPED = 10  # with one replica dead and one stopped
REQUESTS_AFTER_RESTART = 20  # once the restarted replica serves again
LOAD_TIMEOUT = 60.0
# nginx sends nothing to a replica for fail_timeout (5 s) after its last failed attempt:
# the restarted one may wait that long after its readiness for its first request.
BACK_IN_ROTATION_TIMEOUT = 12.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as running:
        yield running


# ---- the test ---------------------------------------------------------------------------------


def test_nginx_hides_a_killed_and_a_restarted_replica(cluster: Cluster) -> None:
    requests = scoring_requests()
    # The reference: each request straight to one replica, before any load.
    expected = []
    for path, body in requests:
        status, payload = request(cluster.replicas[0].port, "POST", path, body, REQUEST_TIMEOUT)
        assert status == 200, (path, payload[:300])
        expected.append(json.loads(payload))
        # ... and through nginx: the same numbers.
        status, proxied = request(cluster.nginx_port, "POST", path, body, REQUEST_TIMEOUT)
        assert status == 200, (path, proxied[:300])
        assert json.loads(proxied) == expected[-1], path

    killed, restarted, _ = cluster.replicas
    load = Load(cluster.nginx_port, requests, expected)
    began = time.monotonic()
    load.start(CLIENT_THREADS)
    try:
        wait_for(lambda: load.count() >= REQUESTS_BEFORE_KILL, LOAD_TIMEOUT)
        before_kill = load.count()
        killed.kill()  # SIGKILL: in-flight requests and keep-alive connections die with it
        wait_for(  # until nginx has met the dead replica (a retry) under enough load
            lambda: (
                retried(cluster.access_log) >= 1
                and load.count() >= before_kill + REQUESTS_AFTER_KILL
            ),
            LOAD_TIMEOUT,
        )
        stopped_code = restarted.stop(signal.SIGTERM)  # graceful: stops accepting, finishes
        after_stop = load.count()
        wait_for(lambda: load.count() >= after_stop + REQUESTS_WHILE_STOPPED, LOAD_TIMEOUT)
        restarted.start()  # same port, under load: warms up while nginx sends to the others
        restarted.wait_ready()
        ready_line = access_lines(cluster.access_log)
        ready_count = load.count()
        wait_for(  # back in rotation: nginx leaves it alone for fail_timeout after a failure
            lambda: (
                upstream_statuses(cluster.access_log, ready_line)[(str(restarted.port), "200")]
                >= 10
            ),
            BACK_IN_ROTATION_TIMEOUT,
            interval=0.2,
        )
        back = load.count()
        wait_for(lambda: load.count() >= back + REQUESTS_AFTER_RESTART, LOAD_TIMEOUT)
    finally:
        load.join()
    elapsed = time.monotonic() - began
    total = load.count()

    served = upstream_statuses(cluster.access_log)
    retries = retried(cluster.access_log)
    after_restart = upstream_statuses(cluster.access_log, ready_line)
    summary = (
        f"{total} requests in {elapsed:.1f} s through nginx with {CLIENT_THREADS} threads: "
        f"{load.ok} ok, {len(load.failures)} failed, {len(load.cut)} cut and sent again; "
        f"{before_kill} before the SIGKILL, "
        f"{after_stop - before_kill} until the SIGTERM'd replica exited ({stopped_code}), "
        f"{total - ready_count} after it was ready again; {retries} retried on another "
        f"replica by nginx; "
        f"killed port {killed.port}, restarted port {restarted.port}; final upstream/status: "
        f"{dict(sorted(served.items()))}"
    )
    print(summary)
    assert load.failures == [], f"{summary}\nfirst failures: {load.failures[:5]}\n{cluster.logs()}"
    # Answers the killed replica was sending (see Load): one per thread at most; the SIGTERM'd
    # one finishes its answers.
    assert len(load.cut) <= CLIENT_THREADS, f"{summary}\n{load.cut}"
    assert before_kill >= 20, summary
    assert retries >= 1, f"the events never hit a request: nothing to prove\n{summary}"
    assert total - after_stop >= 20, summary
    # uvicorn with one worker finishes its requests, then re-raises the SIGTERM it caught.
    assert stopped_code in (0, -signal.SIGTERM), f"SIGTERM: exit {stopped_code}\n{cluster.logs()}"
    assert not restarted.needed_sigkill, f"SIGTERM did not stop the replica\n{cluster.logs()}"
    # All three replicas served before the events, and the restarted one serves again.
    ports = {str(r.port) for r in cluster.replicas}
    assert {address for address, _ in served} >= ports, summary
    assert after_restart[(str(restarted.port), "200")] > 0, summary
    assert not any(a == str(killed.port) and s == "200" for a, s in after_restart), summary


# ---- gRPC through nginx ----------------------------------------------------------------------

MODEL_INFER = "inference.GRPCInferenceService/ModelInfer"
GRPC_CALLS_BEFORE_KILL = 9  # three rounds over the three replicas
GRPC_CALLS_AFTER_KILL = 12
# Calls after the kill until nginx has met the dead replica (round robin: within three).
GRPC_CALLS_BOUND = 100


def test_nginx_hides_a_killed_replica_from_grpc_calls(cluster: Cluster) -> None:
    rng = np.random.default_rng(11)
    log = cluster.access_log
    calls_made = 0

    def score(channel: grpc.Channel, request_id: str | None = None) -> str:
        """One mse ModelInfer through nginx, checked against numpy; its request id."""
        nonlocal calls_made
        size = int(rng.integers(1, 5000))
        predictions, targets = rng.uniform(-3, 3, size), rng.uniform(-3, 3, size)
        metadata = (("x-request-id", request_id),) if request_id else ()
        response, trailing = call(
            channel, MODEL_INFER, mse_request(predictions, targets), REQUEST_TIMEOUT, metadata
        )
        calls_made += 1
        got, want = outputs(response), naive_mse(predictions, targets)
        assert sorted(got) == sorted(want), response.outputs
        for name, values in want.items():
            np.testing.assert_allclose(got[name], values, rtol=1e-12, atol=0, err_msg=name)
        return trailing["x-request-id"]

    def logged() -> list[tuple[list[str], str]]:  # once nginx has logged every call made
        wait_for(lambda: len(grpc_attempts(log, MODEL_INFER)) >= calls_made, 10, interval=0.05)
        return grpc_attempts(log, MODEL_INFER)

    ports = {str(replica.grpc_port) for replica in cluster.replicas}
    with grpc.insecure_channel(f"127.0.0.1:{cluster.nginx_grpc_port}") as channel:
        # The calls docker-compose.yml shows for grpcurl, through nginx: reflection (a
        # bidirectional stream), health, model metadata and an inference.
        examples = grpcurl_calls(COMPOSE.read_text(encoding="utf-8"))
        for example in examples:
            if example.method == "list":
                assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= set(
                    listed_services(channel)
                )
                continue
            answer = call_json(channel, example.method, example.data, REQUEST_TIMEOUT)
            if example.method == MODEL_INFER:
                calls_made += 1
            check_example_answer(example.method, answer)

        # The request id: the client's goes through nginx to the replica and back; without
        # one, nginx's own $request_id (32 hex digits), which is also in its access log.
        assert score(channel, "grpc-through-nginx-1") == "grpc-through-nginx-1"
        own = score(channel)
        assert re.fullmatch("[0-9a-f]{32}", own), own
        wait_for(lambda: f"id={own} " in log.read_text(encoding="utf-8"), 10, interval=0.05)

        for _ in range(GRPC_CALLS_BEFORE_KILL):
            score(channel)
        before = logged()
        assert all(status == "0" for _, status in before), before
        # One client channel, yet every replica served: nginx balances calls, not connections.
        assert {tried[-1] for tried, _ in before} == ports, before

        killed = cluster.replicas[0]
        killed.kill()  # SIGKILL: its listening sockets and nginx's idle connections to it close
        kill_line = access_lines(log)

        def met_the_dead_one() -> bool:
            return any(len(tried) > 1 for tried, _ in grpc_attempts(log, MODEL_INFER, kill_line))

        sent = 0
        while sent < GRPC_CALLS_AFTER_KILL or not met_the_dead_one():
            assert sent < GRPC_CALLS_BOUND, (
                f"nginx never tried the killed replica\n{cluster.logs()}"
            )
            score(channel)  # raises on any status but OK, and checks the numbers
            sent += 1
            logged()

    after = grpc_attempts(log, MODEL_INFER, kill_line)
    summary = f"{calls_made} calls; after the SIGKILL of port {killed.grpc_port}: {after}"
    print(summary)
    assert len(after) == sent, summary
    assert all(status == "0" for _, status in after), summary
    # Each retried call went first to the dead replica, then to a live one; none was answered
    # by the dead one, and both others served.
    retried_calls = [tried for tried, _ in after if len(tried) > 1]
    assert retried_calls, summary
    assert all(tried[0] == str(killed.grpc_port) for tried in retried_calls), summary
    assert {tried[-1] for tried, _ in after} == ports - {str(killed.grpc_port)}, summary


# ---- a request that times out at nginx -----------------------------------------------------


def slow_custom_request(entries: int) -> bytes:
    """A custom loss that takes seconds (40 sines of huge arguments, ~6 us per entry) yet is
    within the work budget the replicas are given."""
    terms = [f"sin(p*k + {i})" for i in range(40)]
    groups = ["(" + " + ".join(terms[i : i + 10]) + ")" for i in range(0, len(terms), 10)]
    body = {
        "predictions": [round(0.001 * (i % 997), 3) for i in range(entries)],
        "targets": [0.5] * entries,
        "params": {"expression": " + ".join(groups), "constants": {"k": 1e299}},
        "include": ["cost"],
    }
    return json.dumps(body).encode()


def requests_seen(port: int, loss: str) -> float:
    """The replica's own count of scoring requests for ``loss`` (every status)."""
    _, text = request(port, "GET", "/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.decode().splitlines()
        if line.startswith("loss_service_requests_total{") and f'loss="{loss}"' in line
    )


def test_a_request_that_times_out_at_nginx_is_not_replayed(tmp_path: Path) -> None:
    """nginx gives up on a slow replica after proxy_read_timeout (0.3 s here; the request takes
    ~1-3 s) with a 504 and does not send the request to the other replicas; the replica stops
    the work when nginx closes the connection (its access line says 499)."""

    def short_read_timeout(text: str) -> str:
        return replace_once(text, r"proxy_read_timeout \S+;", "proxy_read_timeout 300ms;")

    with running_cluster(
        tmp_path, short_read_timeout, LOSS_SERVICE_MAX_WORK_SECONDS="1000",
        LOSS_SERVICE_LOG_LEVEL="info",
    ) as cluster:  # fmt: skip
        body = slow_custom_request(500_000)
        status, payload = request(cluster.nginx_port, "POST", "/v1/losses/custom", body, 60)
        assert status == 504, payload[:300]

        # nginx logs the request, and the replica notices nginx closing the connection and
        # stops at its next chunk of work (its access line and metrics come when it ends),
        # within about a second.
        def logged() -> list[str]:
            lines = cluster.access_log.read_text(encoding="utf-8", errors="replace").splitlines()
            return [text for text in lines if "/v1/losses/custom" in text and " upstream=" in text]

        def replicas_seen() -> list[float]:
            return [requests_seen(replica.port, "custom") for replica in cluster.replicas]

        wait_for(lambda: bool(logged()) and sum(replicas_seen()) >= 1, 20, interval=0.1)
        line, seen = logged(), replicas_seen()
        assert len(line) == 1, line
        assert ", " not in line[0].split(" upstream=")[1].split(" ")[0], f"retried: {line[0]}"
        assert sorted(seen) == [0.0, 0.0, 1.0], f"the request reached {seen} replicas"
        served = cluster.replicas[seen.index(1.0)]
        log = served.log.read_text(encoding="utf-8", errors="replace")
        finished = [text for text in log.splitlines() if '"/v1/losses/custom"' in text]
        assert finished and '"status":499' in finished[-1], finished
