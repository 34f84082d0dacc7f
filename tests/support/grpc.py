"""The gRPC server in this process, as the tests use it: the worker's services (settings,
readiness, pipeline) with :class:`~service.api.v2_grpc.server.GrpcServer` on a port the system
picks, in an event loop of its own thread; clients are grpc's synchronous stubs.

tritonclient is never imported here: its stubs and the service's are both package
``inference`` (tests/system/test_grpc_tritonclient.py runs it in a subprocess).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import numpy as np

from service.api import table
from service.api.routes import Services
from service.api.v2_grpc import grpc_predict_v2_pb2 as pb
from service.api.v2_grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from service.api.v2_grpc.server import GrpcServer
from service.compute.pipeline import Pipeline
from service.ops.readiness import Readiness
from service.ops.settings import Settings

TIMEOUT = 30.0  # s: every call's deadline


class Served:
    """A running server: its port, services, and a channel with the inference stub."""

    def __init__(
        self, server: GrpcServer, port: int, services: Services, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.server = server
        self.port = port
        self.services = services
        self.loop = loop
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)]
        )
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)

    def call(self, method: str, request: Any, metadata: Any = None) -> Any:
        return getattr(self.stub, method)(request, timeout=TIMEOUT, metadata=metadata)

    def run(self, coroutine: Any) -> Any:
        """Run a coroutine in the server's event loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT)

    def error(self, method: str, request: Any, metadata: Any = None) -> grpc.RpcError:
        """The error a call ends with (fails the test if it succeeds)."""
        try:
            getattr(self.stub, method)(request, timeout=TIMEOUT, metadata=metadata)
        except grpc.RpcError as error:
            return error
        raise AssertionError(f"{method} succeeded; an error was expected")


@contextmanager
def grpc_served(settings: Settings | None = None, *, ready: bool = True) -> Iterator[Served]:
    settings = settings or Settings(grpc_port=0)
    readiness = Readiness(ready=ready)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="grpc-test-loop", daemon=True)
    thread.start()
    pipeline = Pipeline(settings)
    services = Services(settings, readiness, pipeline, table.build())
    server = GrpcServer(services)
    port = asyncio.run_coroutine_threadsafe(server.start(port=0), loop).result(TIMEOUT)
    served = Served(server, port, services, loop)
    try:
        yield served
    finally:
        served.channel.close()
        served.run(server.stop())
        pipeline.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()


def raw_request(
    model: str,
    inputs: dict[str, Any],
    datatypes: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
    outputs: tuple[str, ...] = (),
) -> pb.ModelInferRequest:
    """A ModelInferRequest with every input in ``raw_input_contents`` (FP64 unless
    ``datatypes`` says otherwise; integer arrays INT64)."""
    request = pb.ModelInferRequest(model_name=model)
    for name, values in inputs.items():
        array = np.asarray(values)
        default = "INT64" if array.dtype.kind in "iu" else "FP64"
        datatype = (datatypes or {}).get(name, default)
        request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        request.raw_input_contents.append(array.astype(DTYPES[datatype]).tobytes())
    set_parameters(request.parameters, parameters or {})
    for name in outputs:
        request.outputs.add(name=name)
    return request


def set_parameters(target: Any, parameters: dict[str, Any]) -> None:
    for key, value in parameters.items():
        if isinstance(value, bool):
            target[key].bool_param = value
        elif isinstance(value, int):
            target[key].int64_param = value
        elif isinstance(value, float):
            target[key].double_param = value
        else:
            target[key].string_param = value


DTYPES = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8"}


def outputs_of(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """The response's outputs as arrays, from raw_output_contents in the order of outputs."""
    assert len(response.raw_output_contents) == len(response.outputs)
    return {
        output.name: np.frombuffer(raw, dtype=DTYPES[output.datatype]).reshape(tuple(output.shape))
        for output, raw in zip(response.outputs, response.raw_output_contents, strict=True)
    }


def slow_ctc(samples: int, steps: int, length: int) -> pb.ModelInferRequest:
    """CTC from logits over long sequences, only the cost asked for: its table of
    ``steps x (2 length + 1)`` cells per sample makes a call that is still computing while a
    test acts (~0.4 s of one core per sample at 2000 x 800, ~1 s at 3000 x 1200)."""
    rng = np.random.default_rng(5)
    classes = 8
    return raw_request(
        "ctc",
        {
            "predictions": rng.normal(size=(samples, steps, classes)),
            "targets": rng.integers(1, classes, size=(samples, length)),
            "target_lengths": np.full(samples, length),
        },
        parameters={"from_logits": True},
        outputs=("cost",),
    )
