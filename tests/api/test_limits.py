"""Bodies, compute slots, work estimates, lanes and deadlines (issue 11, findings 2 and 5), in
process: the body reader against a scripted ASGI ``receive``, the app through its ASGI callable.

The same properties are checked against a real server, with real sockets, in
tests/system/test_hostile.py.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from service.api.body import BodyLimits, Progress, read_body
from service.app import create_app
from service.compute import parallel, work
from service.compute.admission import Admission, Holding
from service.compute.deadline import ClientClosed, Deadline
from service.losses.registry import REGISTRY
from service.ops.settings import Settings
from service.validation.contracts import Inputs
from service.validation.errors import (
    DeadlineExceeded,
    PayloadTooLarge,
    RequestTimeout,
    WorkTooLarge,
)
from tests.support.asgi import post_scope


def scripted(messages: list[dict | None], log: list[str] | None = None):
    """An ASGI receive that hands out ``messages``; ``None`` (or running out) never answers."""

    async def receive() -> dict:
        if log is not None:
            log.append("receive")
        if messages:
            message = messages.pop(0)
            if message is not None:
                return message
        await asyncio.Event().wait()  # a client that sends nothing more
        raise AssertionError("unreachable")

    return receive


def chunk(data: bytes, more: bool = True) -> dict:
    return {"type": "http.request", "body": data, "more_body": more}


LIMITS = BodyLimits(max_bytes=1000, idle_seconds=0.2, min_bytes_per_second=0)


def test_the_budget_is_charged_with_bytes_that_arrived_not_with_content_length() -> None:
    admission = Admission(max_requests=4, max_bytes=10_000, retry_after=1)

    async def main() -> None:
        holding = Holding(admission)
        log: list[str] = []
        receive = scripted([chunk(b"x"), None], log)
        reading = asyncio.ensure_future(
            read_body(receive, str(256 << 20), BodyLimits(1 << 30, 60, 0), holding, Progress())
        )
        # The reader has taken the first chunk once it asks for the next one (which never
        # comes); the event loop runs it, turn by turn, up to a bound.
        for _ in range(1000):
            if len(log) >= 2:
                break
            await asyncio.sleep(0)
        assert len(log) == 2, "the reader did not ask for more than the first chunk"
        assert admission.bytes == 1, "the declared 256 MiB are not reserved"
        assert admission.requests == 0, "reading a body holds no compute slot"
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        holding.release()

    asyncio.run(main())
    assert admission.bytes == 0


def test_a_body_is_read_whole_and_stays_charged_until_released() -> None:
    admission = Admission(4, 10_000, 1)
    holding = Holding(admission)
    progress = Progress()
    receive = scripted([chunk(b'{"a":'), chunk(b""), chunk(b"1}", more=False)])
    body = asyncio.run(read_body(receive, None, LIMITS, holding, progress))
    assert bytes(body) == b'{"a":1}'
    assert (admission.bytes, progress.received, progress.complete) == (7, 7, True)
    holding.release()
    assert admission.bytes == 0


def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    log: list[str] = []
    with pytest.raises(PayloadTooLarge) as caught:
        asyncio.run(
            read_body(
                scripted([], log), "1001", LIMITS, Holding(Admission(4, 10**6, 1)), Progress()
            )
        )
    assert log == [], "nothing was read"
    assert caught.value.headers == {"Connection": "close"}


def test_a_streamed_body_over_the_limit_is_413_as_it_passes() -> None:
    admission = Admission(4, 10**6, 1)
    receive = scripted([chunk(b"x" * 600), chunk(b"x" * 600), chunk(b"x" * 600)])
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_body(receive, None, LIMITS, Holding(admission), Progress()))
    assert admission.bytes == 600, "the caller releases what was held"


def test_a_stalled_body_is_408_and_closes() -> None:
    receive = scripted([chunk(b"x" * 10), None])
    with pytest.raises(RequestTimeout) as caught:
        asyncio.run(read_body(receive, "100", LIMITS, Holding(Admission(4, 10**6, 1)), Progress()))
    assert caught.value.status == 408
    assert caught.value.headers == {"Connection": "close"}
    assert "no bytes of the body arrived for 0.2 s" in caught.value.detail
    assert "after 10 bytes" in caught.value.detail


def test_a_trickling_body_is_408_once_below_the_minimum_rate() -> None:
    """One byte every 50 ms never trips the 0.2 s idle timeout; the rate check does."""

    async def receive() -> dict:
        await asyncio.sleep(0.05)
        return chunk(b"x")

    limits = BodyLimits(max_bytes=10**6, idle_seconds=0.2, min_bytes_per_second=1000)
    progress = Progress()
    with pytest.raises(RequestTimeout) as caught:
        asyncio.run(read_body(receive, None, limits, Holding(Admission(4, 10**6, 1)), progress))
    assert "below LOSS_SERVICE_BODY_MIN_BYTES_PER_SECOND (1000)" in caught.value.detail
    assert 3 <= progress.received < 20


# ---- through the app ------------------------------------------------------------------------


async def asgi(app: Any, path: str, messages: list[dict | None], headers: dict[str, str]):
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = post_scope(path, headers)
    await app(scope, scripted(messages), send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.lower(): v for k, v in start["headers"]}, body


def app_with(**settings: Any):
    return create_app(Settings(**settings), warm=lambda: 0)


MSE = json.dumps({"predictions": [1.0, 2.0], "targets": [1.5, 2.0]}).encode()


def test_answers_before_the_body_close_the_connection() -> None:
    app = app_with(max_body_bytes=100, api_keys="k")
    too_large = {"content-length": "5000", "authorization": "Bearer k"}
    status, headers, _ = asyncio.run(asgi(app, "/v1/losses/mse", [], too_large))
    assert status == 413 and headers[b"connection"] == b"close"
    no_key = {"content-length": str(len(MSE))}
    status, headers, _ = asyncio.run(asgi(app, "/v1/losses/mse", [chunk(MSE, False)], no_key))
    assert status == 401 and headers[b"connection"] == b"close"
    good = {"content-length": str(len(MSE)), "authorization": "Bearer k"}
    status, headers, body = asyncio.run(asgi(app, "/v1/losses/mse", [chunk(MSE, False)], good))
    assert status == 200 and b"connection" not in headers
    assert json.loads(body)["cost"] == 0.125  # ((1 - 1.5)^2 + 0) / 2


def test_a_stalled_body_through_the_app_is_a_408_problem() -> None:
    app = app_with(body_timeout_seconds=0.1)
    status, headers, body = asyncio.run(
        asgi(app, "/v1/losses/mse", [chunk(MSE[:5]), None], {"content-length": str(len(MSE))})
    )
    assert status == 408 and headers[b"connection"] == b"close"
    assert json.loads(body)["type"] == "/problems/request-timeout"
    assert app.state.pipeline.admission.bytes == 0


def custom_body(entries: int, expression: str, constants: dict | None = None) -> bytes:
    rng = np.random.default_rng(0)
    return json.dumps(
        {
            "predictions": rng.uniform(0.1, 1, entries).round(4).tolist(),
            "targets": rng.uniform(0.1, 1, entries).round(4).tolist(),
            "params": {"expression": expression, "constants": constants or {}},
        }
    ).encode()


def test_work_over_the_budget_is_a_413_that_says_what_fits() -> None:
    app = app_with(max_work_seconds=0.01)
    body = custom_body(100_000, "sin(p * k) + cos(y * k)", {"k": 1e299})
    status, _, answer = asyncio.run(
        asgi(app, "/v1/losses/custom", [chunk(body, False)], {"content-length": str(len(body))})
    )
    problem = json.loads(answer)
    assert status == 413 and problem["type"] == "/problems/work-too-large"
    spec = REGISTRY["custom"]
    params = spec.params(expression="sin(p * k) + cos(y * k)", constants={"k": 1e299})
    estimate = work.of_loss(spec, Inputs(np.zeros(100_000), np.zeros(100_000)), params)
    fits = int(100_000 * 0.01 / estimate.seconds)
    assert "the limit is 0.01 s (LOSS_SERVICE_MAX_WORK_SECONDS)" in problem["detail"]
    assert f"at most about {fits:,} entries" in problem["detail"]
    assert f"an estimated {estimate.seconds:.3g} s" in problem["detail"]


def test_past_the_deadline_the_work_stops_with_a_504() -> None:
    app = app_with(compute_timeout_seconds=0.05, heavy_work_seconds=0)
    body = custom_body(200_000, " + ".join(f"sin(p * k + {i})" for i in range(8)), {"k": 1e299})
    status, _, answer = asyncio.run(
        asgi(app, "/v1/losses/custom", [chunk(body, False)], {"content-length": str(len(body))})
    )
    assert status == 504, answer
    assert json.loads(answer)["type"] == "/problems/deadline-exceeded"


def test_heavy_plans_run_in_the_heavy_lane_light_ones_where_they_were_prepared() -> None:
    app = app_with(heavy_work_seconds=0.001)
    scoring = app.state.pipeline
    used: list[str] = []
    for name in ("light", "heavy"):
        pool = getattr(scoring, name)
        real = pool.run

        async def spy(job, deadline=None, real=real, name=name):
            used.append(name)
            return await real(job, deadline)

        pool.run = spy
    small = json.dumps({"predictions": [1.0], "targets": [2.0]}).encode()
    asyncio.run(asgi(app, "/v1/losses/mse", [chunk(small, False)], {}))
    assert used == ["light"]
    used.clear()
    expensive = " + ".join(f"sin(p * k + {i})" for i in range(8))  # ~1 us per entry
    large = custom_body(2_000, expensive, {"k": 1.0})
    assert len(large) < scoring.heavy_message_bytes
    status, _, _ = asyncio.run(asgi(app, "/v1/losses/custom", [chunk(large, False)], {}))
    assert status == 200
    assert used == ["light", "heavy"], "prepared in the light lane, computed in the heavy one"


# ---- kernels in chunks under a deadline ----------------------------------------------------------


def counting_kernel(calls: list[int], deadline: Deadline | None = None, cancel_after: int = -1):
    def kernel(predictions, targets, scale, losses, gradient) -> None:
        calls.append(predictions.size)
        losses[:] = 1.0
        if deadline is not None and len(calls) == cancel_after:
            deadline.cancel()

    return kernel


def test_a_call_estimated_long_runs_in_chunks_and_stops_when_cancelled() -> None:
    units = np.zeros(1000)
    calls: list[int] = []
    deadline = Deadline(60)
    kernel = counting_kernel(calls, deadline, cancel_after=3)
    with pytest.raises(ClientClosed):
        parallel.run(
            kernel, (units, units), units, np.empty(1000), np.empty(0), (), 1, 1.0, deadline
        )
    chunks = math.ceil(1.0 / parallel.CHUNK_SECONDS)
    assert calls == [1000 // chunks] * 3, "stopped right after the third of 100 chunks"


def test_a_call_past_its_deadline_raises_504_and_the_chunks_cover_everything() -> None:
    units = np.zeros(1000)
    calls: list[int] = []
    losses = np.zeros(1000)
    parallel.run(
        counting_kernel(calls),
        (units, units),
        units,
        losses,
        np.empty(0),
        (),
        2,
        0.05,
        Deadline(60),
    )
    assert sum(calls) == 1000 and len(calls) == 5 and losses.min() == 1.0
    expired = Deadline(0.0)
    calls.clear()
    with pytest.raises(DeadlineExceeded) as caught:
        parallel.run(
            counting_kernel(calls), (units, units), units, losses, np.empty(0), (), 1, 0.05, expired
        )
    assert calls == []
    assert "LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS" in caught.value.detail


def test_estimates_and_limits() -> None:
    spec = REGISTRY["mse"]
    inputs = Inputs(np.zeros((100, 10)), np.zeros((100, 10)))
    estimate = work.of_loss(spec, inputs, spec.params())
    # 1,000 entries of mse, then 100 per-sample values and 1,000 gradient entries as JSON.
    assert estimate.seconds == pytest.approx(
        1000 * spec.entry_seconds + 1100 * work.JSON_OUTPUT_SECONDS
    )
    plan = work.Plan(estimate, lambda: "ran")
    assert work.Limits(10, 1.0, math.inf).admit(plan) == "ran"
    assert work.Limits(10, 1.0, 0.0).admit(plan) is plan, "too heavy for this lane: handed back"
    with pytest.raises(WorkTooLarge):
        work.Limits(10, estimate.seconds / 2, math.inf).admit(plan)
