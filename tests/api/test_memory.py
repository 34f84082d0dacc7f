"""A request's memory is freed when its answer is sent, with no garbage collection needed.

Every scoring route and every kind of outcome (200, each error status, the heavy lane, a compute
deadline, a client that leaves) runs through the real ASGI app with the garbage collector
disabled. Afterwards:

- weak references to the request's arrays (the inputs the engine received and the outputs it
  returned) are dead: nothing, not even a reference cycle, holds them;
- the memory Python allocated for the request (tracemalloc: the body, the decoded document,
  lists, arrays) is back to what it was before, within a small margin far below the body's size.

A cycle would keep all of these until a full collection (issue 11: a failed request's traceback,
kept on a future, held its frames; the response encoder's recursive closure held its arrays).
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import sys
import tracemalloc
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest

import service.losses  # noqa: F401  (registers every loss)
from service.app import create_app
from service.compute import engine
from service.compute import pipeline as pipeline_module
from service.ops.settings import Settings
from tests.support.asgi import post_scope

#: Bodies of ~5 MB through the app with tracemalloc on, 30 times: make test-fast leaves them out,
#: make test runs them.
pytestmark = pytest.mark.slow

ROWS = 20_000  # (20,000, 10) predictions: a body of ~4-5 MB
MARGIN = 512 * 1024  # bytes still allocated after a request (metric children, caches)


def big(shape: tuple[int, ...], seed: int) -> list:
    return np.random.default_rng(seed).uniform(0.05, 0.95, shape).round(6).tolist()


def v1_body(**overrides: Any) -> bytes:
    body = {"predictions": big((ROWS, 10), 1), "targets": big((ROWS, 10), 2), **overrides}
    return json.dumps(body).encode()


def v2_body() -> bytes:
    return json.dumps(
        {
            "inputs": [
                {"name": "predictions", "shape": [ROWS, 10], "datatype": "FP64",
                 "data": big((ROWS, 10), 1)},
                {"name": "targets", "shape": [ROWS, 10], "datatype": "FP64",
                 "data": big((ROWS, 10), 2)},
            ]
        }
    ).encode()  # fmt: skip


def evaluate_body(**overrides: Any) -> bytes:
    body = {
        "predictions": big((ROWS, 10), 1),
        "targets": big((ROWS, 10), 2),
        "terms": [{"loss": "mse"}, {"loss": "mae", "weight": 0.5}],
        "metrics": ["rmse"],
        **overrides,
    }
    return json.dumps(body).encode()


def merge_body() -> bytes:
    """Two states of ~1.4 MB each (roc_auc over ROWS distinct scores, 7 slices)."""
    if not _STATES:
        app = create_app(Settings(), warm=lambda: 0)
        body = json.loads(
            evaluate_body(
                state=True,
                include=["cost"],
                groups=[i % 7 for i in range(ROWS)],
                metrics=["roc_auc", "rmse"],
                targets=(np.arange(ROWS * 10).reshape(ROWS, 10) % 2).tolist(),
            )
        )
        loop = asyncio.new_event_loop()
        try:
            for offset in (0, ROWS):
                answer = loop.run_until_complete(
                    respond(app, "/v1/evaluate", json.dumps({**body, "offset": offset}).encode())
                )
                _STATES.append(answer["state"])
        finally:
            app.state.pipeline.close()
            loop.close()
    return orjson.dumps({"states": _STATES})


_STATES: list[dict] = []


async def respond(app: Any, path: str, body: bytes) -> dict:
    """The JSON answer of one request straight through the ASGI app."""
    chunks: list[bytes] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message["body"])

    await app(post_scope(path, JSON_HEADERS), receive, send)
    return json.loads(b"".join(chunks))


class Tracker:
    """Weak references to every array the engine receives and returns."""

    def __init__(self) -> None:
        self.references: list[weakref.ref] = []

    def watch(self, *arrays: Any) -> None:
        for array in arrays:
            if isinstance(array, np.ndarray) and array.size > 1000:
                self.references.append(weakref.ref(array))

    def alive(self) -> int:
        return sum(reference() is not None for reference in self.references)


@pytest.fixture
def tracker(monkeypatch: pytest.MonkeyPatch) -> Tracker:
    tracker = Tracker()
    real = engine._compute

    def watched(spec, inputs, params, reduction, with_gradient, *rest):
        tracker.watch(inputs.predictions, inputs.targets, inputs.sample_weight, inputs.mask)
        result = real(spec, inputs, params, reduction, with_gradient, *rest)
        tracker.watch(result.per_sample, result.gradient)
        return result

    monkeypatch.setattr(engine, "_compute", watched)
    return tracker


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def call(app: Any, path: str, body: bytes, headers: dict[str, str], leave: bool = False):
    """One request straight through the ASGI app; the body is handed over and not kept here.
    With ``leave`` the client disconnects as soon as its body was read."""
    pending = [body]
    del body
    sent: list[dict] = []
    gone = asyncio.Event()

    async def receive() -> dict:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        if not leave:
            await gone.wait()  # the client stays until the answer is out
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append({key: value for key, value in message.items() if key != "body"})
        if message["type"] == "http.response.body":
            gone.set()

    scope = post_scope(path, headers)
    await app(scope, receive, send)
    starts = [message for message in sent if message["type"] == "http.response.start"]
    return starts[0]["status"] if starts else None


JSON_HEADERS = {"content-type": "application/json"}

CASES = {
    "v1-200": ("/v1/losses/mse", v1_body, JSON_HEADERS, 200, {}),
    "v1-422-shape": (
        "/v1/losses/mse",
        lambda: v1_body(targets=big((ROWS, 9), 2)),
        JSON_HEADERS,
        422,
        {},
    ),
    "v1-422-domain": (
        "/v1/losses/mse",
        lambda: v1_body(sample_weight=[1.0] * (ROWS - 1) + [-1.0]),
        JSON_HEADERS,
        422,
        {},
    ),
    "v1-422-nan": (
        "/v1/losses/mse",
        lambda: v1_body(predictions=[[float("nan")] * 10, *big((ROWS - 1, 10), 1)]),
        JSON_HEADERS,
        422,
        {},
    ),
    "v1-413-elements": ("/v1/losses/mse", v1_body, JSON_HEADERS, 413, {"max_elements": 100_000}),
    "v1-413-work": ("/v1/losses/mse", v1_body, JSON_HEADERS, 413, {"max_work_seconds": 1e-6}),
    "v1-400": ("/v1/losses/mse", lambda: v1_body()[:-5], JSON_HEADERS, 400, {}),
    "v1-heavy-lane": ("/v1/losses/mse", v1_body, JSON_HEADERS, 200, {"heavy_work_seconds": 0}),
    "v1-504-deadline": (
        "/v1/losses/custom",
        lambda: v1_body(
            params={"expression": "sin(p * k) + cos(y * k)", "constants": {"k": 1e299}}
        ),
        JSON_HEADERS,
        504,
        {"compute_timeout_seconds": 1e-4, "heavy_work_seconds": 0},
    ),
    "evaluate-200": ("/v1/evaluate", evaluate_body, JSON_HEADERS, 200, {}),
    "evaluate-state-200": (
        "/v1/evaluate",
        lambda: evaluate_body(
            state=True, groups=[i % 7 for i in range(ROWS)], top_k=10, metrics=["rmse", "r2"]
        ),
        JSON_HEADERS,
        200,
        {},
    ),
    "merge-200": ("/v1/evaluate/merge", lambda: merge_body(), JSON_HEADERS, 200, {}),
    "merge-422": (
        "/v1/evaluate/merge",
        lambda: merge_body().replace(b'"reduction":"mean"', b'"reduction":"sum"', 1),
        JSON_HEADERS,
        422,
        {},
    ),
    "evaluate-422": (
        "/v1/evaluate",
        lambda: evaluate_body(terms=[{"loss": "mse"}, {"loss": "sparse_cce"}]),
        JSON_HEADERS,
        422,
        {},
    ),
    "v2-200": ("/v2/models/mse/infer", v2_body, JSON_HEADERS, 200, {}),
    "v2-gzip-200": (
        "/v2/models/mse/infer",
        lambda: gzip.compress(v2_body(), 1),
        {**JSON_HEADERS, "content-encoding": "gzip"},
        200,
        {},
    ),
    "v2-400": (
        "/v2/models/mse/infer",
        lambda: v2_body().replace(b'"shape": [20000, 10]', b'"shape": [20000, 11]', 1),
        JSON_HEADERS,
        400,
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_request_leaves_nothing_behind(case: str, tracker: Tracker, no_gc: None) -> None:
    path, make_body, headers, status, settings = CASES[case]
    app = create_app(Settings(**settings), warm=lambda: 0)
    loop = asyncio.new_event_loop()
    try:
        # The first request warms every cache (models, metric children, compiled programs).
        assert loop.run_until_complete(call(app, path, make_body(), headers)) == status
        tracker.references.clear()
        body = make_body()
        size = len(gzip.decompress(body) if "content-encoding" in headers else body)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            answered = loop.run_until_complete(call(app, path, body, headers))
            del body
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert answered == status
        assert tracker.alive() == 0, "an array of the request outlived its answer"
        assert size > 4 * MARGIN
        assert after - before < MARGIN, f"{after - before} bytes still held after the answer"
    finally:
        app.state.pipeline.close()
        loop.close()


def test_a_client_that_leaves_frees_its_request(tracker: Tracker, no_gc: None) -> None:
    """Heavy work whose client disconnects stops, and its memory goes with it."""
    app = create_app(Settings(heavy_work_seconds=0), warm=lambda: 0)
    params = {"expression": "sin(p * k) + cos(y * k)", "constants": {"k": 1e299}}
    loop = asyncio.new_event_loop()
    try:
        body = v1_body(params=params)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            answered = loop.run_until_complete(
                call(app, "/v1/losses/custom", body, JSON_HEADERS, leave=True)
            )
            del body
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert answered == 499
        assert tracker.alive() == 0
        assert after - before < MARGIN
    finally:
        app.state.pipeline.close()
        loop.close()


@pytest.mark.parametrize("case", ["v1-200", "evaluate-200", "v2-200", "v2-gzip-200"])
def test_nothing_but_the_decoder_holds_the_body(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the body is handed to its decoder, no other reference to it is left (the pipeline's
    holder gives it up as decoding starts), so its bytes are freed once decoded, not held
    through the computation and the answer. A route that kept the body in its frame held a
    36 MB body to the end: the request peaked at up to 2.6x its body instead of 1.7x."""
    counts: list[int] = []
    real = pipeline_module.decode_and_run

    def counted(decode: Any, holder: list, *rest: Any) -> Any:
        counts.append(sys.getrefcount(holder[0]) - 1)  # less getrefcount's own argument
        return real(decode, holder, *rest)

    monkeypatch.setattr(pipeline_module, "decode_and_run", counted)
    path, make_body, headers, status, settings = CASES[case]
    app = create_app(Settings(**settings), warm=lambda: 0)
    loop = asyncio.new_event_loop()
    try:
        answered = loop.run_until_complete(call(app, path, make_body(), headers))
        # (outside the assert: pytest keeps an assert's subexpressions, the body among them)
    finally:
        app.state.pipeline.close()
        loop.close()
    assert answered == status
    assert counts == [1], "references to the body besides the holder's"
