"""A gRPC call's memory is freed when its answer is sent, with no garbage collection needed:
as tests/api/test_memory.py checks for HTTP, through a real grpc.aio server in this process
with the collector disabled. Weak references to the arrays the engine received and returned
are dead after each answer, and Python's allocations (the serialized message, the parsed
request, the response) are back within a margin far below the message's size.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import pytest

from service.ops.settings import Settings
from tests.api.test_memory import MARGIN, Tracker, no_gc, tracker  # noqa: F401  (fixtures)
from tests.support.grpc import TIMEOUT, grpc_served, raw_request

pytestmark = pytest.mark.slow

ROWS = 100_000  # (100,000, 4) FP64 predictions and targets: a message of ~6.4 MB
SETTLE_SECONDS = 5.0
PATH = "/inference.GRPCInferenceService/ModelInfer"


def message(model: str = "mse", **changes: Any) -> bytes:
    rng = np.random.default_rng(3)
    inputs = {
        "predictions": rng.uniform(0.05, 0.95, (ROWS, 4)),
        "targets": rng.uniform(0.05, 0.95, (ROWS, 4)),
    }
    parameters = changes.pop("parameters", None)
    inputs.update(changes)
    return raw_request(model, inputs, parameters=parameters).SerializeToString()


def with_nan() -> bytes:
    predictions = np.random.default_rng(3).uniform(0.05, 0.95, (ROWS, 4))
    predictions[ROWS // 2, 1] = np.nan
    return message(predictions=predictions)


def custom() -> bytes:
    """A custom expression whose work passes a tiny compute deadline."""
    return message("custom", parameters={"expression": "sin(p * 1e299) + cos(y * 1e299)"})


CASES: dict[str, tuple[Callable[[], bytes], grpc.StatusCode, dict[str, Any]]] = {
    "ok": (message, grpc.StatusCode.OK, {}),
    "heavy-lane": (message, grpc.StatusCode.OK, {"heavy_work_seconds": 0}),
    "shape": (
        lambda: message(targets=np.zeros((ROWS, 3))),
        grpc.StatusCode.INVALID_ARGUMENT,
        {},
    ),
    "nan": (with_nan, grpc.StatusCode.INVALID_ARGUMENT, {}),
    "elements": (message, grpc.StatusCode.RESOURCE_EXHAUSTED, {"max_elements": 100_000}),
    "work": (message, grpc.StatusCode.RESOURCE_EXHAUSTED, {"max_work_seconds": 1e-6}),
    "unknown-model": (lambda: message("nse"), grpc.StatusCode.NOT_FOUND, {}),
    "deadline": (
        custom,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        {"compute_timeout_seconds": 1e-4, "heavy_work_seconds": 0},
    ),
}


def settled(before: int, tracker: Tracker) -> int:  # noqa: F811
    """The bytes allocated once the server has finished with the call: the client has its
    status as soon as it is sent, while the server's task is still unwinding, so this waits
    (boundedly) for what a plain release frees; a reference cycle (the collector is off) would
    keep its memory past the wait."""
    give_up = time.monotonic() + SETTLE_SECONDS
    while True:
        now = tracemalloc.get_traced_memory()[0]
        if (now - before < MARGIN and tracker.alive() == 0) or time.monotonic() > give_up:
            return now
        time.sleep(0.01)


def call(channel: grpc.Channel, body: bytes) -> grpc.StatusCode:
    infer = channel.unary_unary(PATH)  # bytes in, bytes out: the client keeps no message
    try:
        infer(body, timeout=TIMEOUT)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_call_leaves_nothing_behind(case: str, tracker: Tracker, no_gc: None) -> None:  # noqa: F811
    make, code, overrides = CASES[case]
    settings = Settings(grpc_port=0, **overrides)
    with grpc_served(settings) as served:
        options = [("grpc.max_receive_message_length", -1)]
        with grpc.insecure_channel(f"127.0.0.1:{served.port}", options=options) as channel:
            assert call(channel, make()) is code  # warms caches, models, metric children
            tracker.references.clear()
            body = make()
            size = len(body)
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                answered = call(channel, body)
                del body
                after = settled(before, tracker)
            finally:
                tracemalloc.stop()
    assert answered is code
    assert tracker.alive() == 0, "an array of the call outlived its answer"
    assert size > 4 * MARGIN
    assert after - before < MARGIN, f"{after - before} bytes still held after the answer"
