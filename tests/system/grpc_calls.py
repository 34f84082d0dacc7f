"""gRPC calls for the deployment tests, with the service's generated stubs and grpcio (never
tritonclient in the same process: both define the protobuf package ``inference``).

An ``mse`` ModelInfer with its data in ``raw_input_contents`` (little-endian FP64, as
tritonclient sends it), its outputs decoded, and the numbers a naive numpy ``mse`` gives; any
method by its full name (``package.Service/Method``, as grpcurl names it) with a request from
JSON; and the service list that server reflection gives (``grpcurl list``).
"""

from __future__ import annotations

import grpc
import numpy as np
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from service.api.v2_grpc import grpc_predict_v2_pb2 as pb

OUTPUTS = ("per_sample", "cost", "gradient")


def method_types(method: str) -> tuple[type[Message], type[Message]]:
    """The request and response classes of ``package.Service/Method`` (KeyError if unknown)."""
    service_name, _, name = method.partition("/")
    service = descriptor_pool.Default().FindServiceByName(service_name)
    found = service.methods_by_name[name]
    return GetMessageClass(found.input_type), GetMessageClass(found.output_type)


def call(
    channel: grpc.Channel,
    method: str,
    request: Message,
    timeout: float,
    metadata: tuple[tuple[str, str], ...] = (),
) -> tuple[Message, dict[str, str]]:
    """One unary call; its response and trailing metadata (raises grpc.RpcError if not OK)."""
    _, response_type = method_types(method)
    stub = channel.unary_unary(
        f"/{method}",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=response_type.FromString,
    )
    response, rpc = stub.with_call(request, timeout=timeout, metadata=metadata)
    return response, dict(rpc.trailing_metadata() or ())


def call_json(channel: grpc.Channel, method: str, data: str | None, timeout: float) -> Message:
    """``method`` with the request that the JSON ``data`` (grpcurl's -d) describes."""
    request_type, _ = method_types(method)
    request = json_format.Parse(data or "{}", request_type())
    return call(channel, method, request, timeout)[0]


def listed_services(channel: grpc.Channel) -> list[str]:
    """The services that server reflection names (``grpcurl list``)."""
    return sorted(ProtoReflectionDescriptorDatabase(channel).get_services())


def mse_request(predictions: np.ndarray, targets: np.ndarray) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="mse")
    for name, values in (("predictions", predictions), ("targets", targets)):
        request.inputs.add(name=name, datatype="FP64", shape=list(values.shape))
        request.raw_input_contents.append(np.ascontiguousarray(values, "<f8").tobytes())
    for name in OUTPUTS:
        request.outputs.add(name=name)
    return request


def outputs(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """Each output as an array of its shape (FP64 in, FP64 out)."""
    assert len(response.raw_output_contents) == len(response.outputs), response.outputs
    found = {}
    for tensor, raw in zip(response.outputs, response.raw_output_contents, strict=True):
        assert tensor.datatype == "FP64", tensor
        found[tensor.name] = np.frombuffer(raw, "<f8").reshape(tuple(tensor.shape))
    return found


def naive_mse(predictions: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """``mse`` of 1-D inputs, by its definition: (p - t)^2 per sample, their mean, and
    2 (p - t) / N."""
    difference = predictions - targets
    return {
        "per_sample": difference**2,
        "cost": np.array([np.mean(difference**2)]),
        "gradient": 2 * difference / difference.size,
    }


#: The data of docker-compose.yml's grpcurl ModelInfer example.
EXAMPLE_PREDICTIONS, EXAMPLE_TARGETS = [0.5, 1.0, 3.0], [1.0, 1.0, 2.0]


def check_example_answer(method: str, answer: Message) -> None:
    """The answer to one of docker-compose.yml's grpcurl examples: the numbers of a naive numpy
    mse for its ModelInfer, SERVING for its health check."""
    if method.endswith("/ModelInfer"):
        got = outputs(answer)  # type: ignore[arg-type]
        want = naive_mse(np.array(EXAMPLE_PREDICTIONS), np.array(EXAMPLE_TARGETS))
        for name, values in want.items():
            np.testing.assert_allclose(got[name], values, rtol=1e-12, err_msg=name)
    if method.startswith("grpc.health.v1.Health/"):
        assert answer.status == health_pb2.HealthCheckResponse.SERVING  # type: ignore[attr-defined]
