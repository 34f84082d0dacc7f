"""The Open Inference Protocol over gRPC, through a real grpc.aio server in this process and
grpc's own client: every loss's example gives the numbers of ``POST /v1/losses/{name}`` (raw
and typed contents, every datatype), the metadata and readiness RPCs, and every error as the
status code API.md names with the REST problem's ``detail``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.v2.models import OUTPUTS, model_metadata
from service.api.v2_grpc import grpc_predict_v2_pb2 as pb
from service.losses.registry import REGISTRY, LossSpec
from service.ops.settings import Settings
from tests.support.grpc import Served, grpc_served, outputs_of, raw_request, set_parameters
from tests.support.oip import (
    MSE_PREDICTIONS,
    MSE_TARGETS,
    assert_same_numbers,
    example_request,
    v1_example,
)

SPECS = list(REGISTRY.values())
StatusCode = grpc.StatusCode


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with grpc_served() as running:
        yield running


def example_inputs(spec: LossSpec) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """The registry example as gRPC inputs: values, datatypes, and the scalar parameters."""
    request = example_request(spec)
    inputs = {item["name"]: item["data"] for item in request["inputs"]}
    datatypes = {item["name"]: item["datatype"] for item in request["inputs"]}
    return inputs, datatypes, request["parameters"]


def mse(served: Served, **changes: Any) -> pb.ModelInferResponse:
    request = raw_request("mse", {"predictions": MSE_PREDICTIONS, "targets": MSE_TARGETS})
    for name, value in changes.items():
        setattr(request, name, value)
    return served.call("ModelInfer", request)


# ---- numbers: the same as /v1 ---------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_example_over_raw_contents_matches_v1(
    served: Served, client: TestClient, spec: LossSpec
) -> None:
    inputs, datatypes, parameters = example_inputs(spec)
    request = raw_request(spec.name, inputs, datatypes, parameters)
    request.id = f"example-{spec.name}"
    response = served.call("ModelInfer", request)
    v1 = v1_example(client, spec)
    assert (response.model_name, response.model_version, response.id) == (
        spec.name,
        "1",
        f"example-{spec.name}",
    )
    assert response.parameters["reduction"].string_param == "mean"
    assert response.parameters["count"].int64_param == v1["count"]
    outputs = outputs_of(response)
    assert list(outputs) == list(OUTPUTS)
    assert all(output.datatype == "FP64" for output in response.outputs)
    assert_same_numbers(outputs, v1, rtol=0)  # the same float64 path: identical


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT32", "INT64"])
def test_typed_contents_in_every_datatype_give_the_raw_numbers(
    served: Served, client: TestClient, datatype: str
) -> None:
    predictions = [[1.0, 2.0, 4.0], [3.0, 5.0, -2.0]]
    targets = [[1.0, 2.0, 2.0], [2.0, 3.0, 0.0]]  # integers: exact in every datatype
    field = {"FP32": "fp32", "FP64": "fp64", "INT32": "int", "INT64": "int64"}[datatype]
    request = pb.ModelInferRequest(model_name="mae")
    for name, values in (("predictions", predictions), ("targets", targets)):
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[2, 3])
        flat = np.ravel(values)
        if datatype.startswith("INT"):
            flat = flat.astype(np.int64)
        getattr(tensor.contents, f"{field}_contents").extend(flat.tolist())
    outputs = outputs_of(served.call("ModelInfer", request))
    v1 = client.post("/v1/losses/mae", json={"predictions": predictions, "targets": targets})
    expected = np.float32 if datatype == "FP32" else np.float64
    assert {output.dtype.type for output in outputs.values()} == {expected}
    assert_same_numbers(outputs, v1.json(), rtol=0)


def test_fp32_predictions_give_fp32_outputs_and_sum_reduction(
    served: Served, client: TestClient
) -> None:
    request = raw_request(
        "huber",
        {"predictions": [[0.5, 3.0], [-2.0, 1.25]], "targets": [[0.0, 0.0], [0.0, 1.0]]},
        {"predictions": "FP32", "targets": "FP64"},
        {"reduction": "sum", "delta": 0.75},
        outputs=("gradient", "cost"),
    )
    response = served.call("ModelInfer", request)
    outputs = outputs_of(response)
    assert list(outputs) == ["gradient", "cost"]
    assert [output.datatype for output in response.outputs] == ["FP32", "FP32"]
    v1 = client.post(
        "/v1/losses/huber",
        json={
            "predictions": [[0.5, 3.0], [-2.0, 1.25]],
            "targets": [[0.0, 0.0], [0.0, 1.0]],
            "params": {"delta": 0.75},
            "reduction": "sum",
        },
    ).json()
    assert_same_numbers(outputs, v1)
    # Hand value: huber(d=0.75) of residuals 0.5, 3, -2, 0.25 summed:
    # 0.125 + 0.75*(3-0.375) + 0.75*(2-0.375) + 0.03125 = 3.34375
    assert outputs["cost"][0] == pytest.approx(3.34375, rel=1e-7)
    assert response.parameters["reduction"].string_param == "sum"


def test_integer_array_params_and_weights_as_inputs(served: Served, client: TestClient) -> None:
    predictions = [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0]]
    body = {
        "predictions": predictions,
        "targets": [0, 2, 1],
        "sample_weight": [1.0, 2.0, 0.5],
        "params": {"class_weight": [1.0, 3.0, 0.5], "label_smoothing": 0.1, "from_logits": True},
    }
    request = raw_request(
        "cross_entropy",
        {
            "predictions": predictions,
            "targets": [0, 2, 1],
            "sample_weight": [1.0, 2.0, 0.5],
            "class_weight": [1.0, 3.0, 0.5],
        },
        {"targets": "INT32"},
        {"label_smoothing": 0.1, "from_logits": True},
    )
    response = served.call("ModelInfer", request)
    assert response.model_name == "sparse_categorical_cross_entropy"  # the alias resolves
    outputs = outputs_of(response)
    assert_same_numbers(outputs, client.post("/v1/losses/cross_entropy", json=body).json(), 0)


def test_the_response_parses_back_and_the_id_is_echoed(served: Served) -> None:
    response = mse(served, id="trace-7")
    assert response.id == "trace-7"
    assert pb.ModelInferResponse.FromString(response.SerializeToString()) == response
    outputs = outputs_of(response)
    # Hand values: residuals (-0.5, 0, 1, 2), squared (0.25, 0, 1, 4); per sample the mean over
    # its 2 entries; the cost their mean over 4 elements.
    np.testing.assert_array_equal(outputs["per_sample"], [0.125, 2.5])
    np.testing.assert_array_equal(outputs["cost"], [5.25 / 4])
    np.testing.assert_array_equal(outputs["gradient"], [[-0.25, 0.0], [0.5, 1.0]])


# ---- metadata and readiness ----------------------------------------------------------------


def test_server_live_ready_and_metadata(served: Served) -> None:
    assert served.call("ServerLive", pb.ServerLiveRequest()).live is True
    assert served.call("ServerReady", pb.ServerReadyRequest()).ready is True
    metadata = served.call("ServerMetadata", pb.ServerMetadataRequest())
    assert metadata.name == "loss-service"
    assert metadata.version


@pytest.mark.parametrize("name", ["sparse_categorical_cross_entropy", "ctc", "mse", "box_iou"])
def test_model_metadata_is_the_rest_metadata(served: Served, name: str) -> None:
    spec = REGISTRY[name]
    response = served.call("ModelMetadata", pb.ModelMetadataRequest(name=name))
    rest = model_metadata(spec)
    assert response.name == rest["name"] == spec.name
    assert list(response.versions) == ["1"]
    for ours, theirs in ((response.inputs, rest["inputs"]), (response.outputs, rest["outputs"])):
        assert [(t.name, t.datatype, list(t.shape)) for t in ours] == [
            (t["name"], t["datatype"], t["shape"]) for t in theirs
        ]


def test_model_ready_follows_readiness_and_drain(served: Served) -> None:
    readiness = served.services.readiness
    assert served.call("ModelReady", pb.ModelReadyRequest(name="mse")).ready is True
    readiness.draining = True
    try:
        assert served.call("ModelReady", pb.ModelReadyRequest(name="mse")).ready is False
        assert served.call("ServerReady", pb.ServerReadyRequest()).ready is False
        # Draining still serves (load balancers are taking the worker out of rotation).
        assert math.isclose(outputs_of(mse(served))["cost"][0], 5.25 / 4)
    finally:
        readiness.draining = False


# ---- errors: status codes with the REST problem's detail ---------------------------------------


def test_unknown_model_is_not_found_with_close_matches(served: Served) -> None:
    request = raw_request("msee", {"predictions": [1.0], "targets": [1.0]})
    error = served.error("ModelInfer", request)
    assert error.code() is StatusCode.NOT_FOUND
    assert "unknown loss 'msee'" in error.details() and "'mse'" in error.details()
    for method, message in (
        ("ModelMetadata", pb.ModelMetadataRequest(name="hubber")),
        ("ModelReady", pb.ModelReadyRequest(name="hubber")),
    ):
        error = served.error(method, message)
        assert error.code() is StatusCode.NOT_FOUND, method
        assert "'huber'" in error.details()
    error = served.error("ModelMetadata", pb.ModelMetadataRequest(name="mse", version="2"))
    assert error.code() is StatusCode.NOT_FOUND
    assert "version '1' only, got '2'" in error.details()


def invalid(served: Served, request: pb.ModelInferRequest, *fragments: str) -> str:
    error = served.error("ModelInfer", request)
    assert error.code() is StatusCode.INVALID_ARGUMENT, error.details()
    for fragment in fragments:
        assert fragment in error.details(), error.details()
    return error.details()


def test_shape_mismatch_names_both_shapes(served: Served) -> None:
    request = raw_request("mse", {"predictions": [[1.0, 2.0]], "targets": [[1.0], [2.0]]})
    invalid(served, request, "targets has shape (2, 1) but predictions has (1, 2)")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_names_the_tensor_and_index(served: Served, bad: float) -> None:
    request = raw_request(
        "mse", {"predictions": [[1.0, 2.0], [3.0, bad]], "targets": [[0.0] * 2] * 2}
    )
    invalid(served, request, "predictions[1][1]")
    typed = pb.ModelInferRequest(model_name="mse")
    tensor = typed.inputs.add(name="predictions", datatype="FP64", shape=[2])
    tensor.contents.fp64_contents.extend([0.5, bad])
    typed.inputs.add(name="targets", datatype="FP64", shape=[2]).contents.fp64_contents.extend(
        [0.0, 0.0]
    )
    invalid(served, typed, "predictions[1]")


def test_unknown_and_wrong_params_are_invalid(served: Served) -> None:
    request = raw_request(
        "huber", {"predictions": [1.0], "targets": [2.0]}, parameters={"deltta": 1.0}
    )
    invalid(served, request, "deltta")
    request = raw_request(
        "huber", {"predictions": [1.0], "targets": [2.0]}, parameters={"reduction": "median"}
    )
    invalid(served, request, "reduction must be 'mean' or 'sum', got 'median'")
    request = raw_request(
        "huber", {"predictions": [1.0], "targets": [2.0]}, parameters={"delta": -1.0}
    )
    invalid(served, request, "delta")


def test_malformed_requests_are_invalid(served: Served) -> None:
    base = {"predictions": [1.0, 2.0], "targets": [1.0, 2.0]}
    request = raw_request("mse", base)
    del request.raw_input_contents[1]
    invalid(served, request, "raw_input_contents has 1 entries for 2 inputs")
    request = raw_request("mse", base)
    request.raw_input_contents[0] = b"\x00" * 15
    invalid(served, request, "predictions: raw_input_contents holds 15 bytes", "takes 16")
    request = raw_request("mse", base)
    request.inputs[0].datatype = "BYTES"
    invalid(served, request, "datatype 'BYTES' is not supported")
    request = raw_request("mse", {**base, "weights": [1.0, 1.0]})
    invalid(served, request, "unknown input(s) 'weights'", "accepted: predictions, targets")
    request = raw_request("mse", {"predictions": [1.0, 2.0]})
    invalid(served, request, "the input 'targets' is required")
    request = raw_request("mse", base, outputs=("loss",))
    invalid(served, request, "unknown output 'loss'")
    typed = pb.ModelInferRequest(model_name="mse")
    typed.inputs.add(name="predictions", datatype="FP64", shape=[2]).contents.int64_contents.extend(
        [1, 2]
    )
    typed.inputs.add(name="targets", datatype="FP64", shape=[2]).contents.fp64_contents.extend(
        [1.0, 2.0]
    )
    invalid(served, typed, "goes in contents.fp64_contents, got contents.int64_contents")
    typed.inputs[0].contents.Clear()
    typed.inputs[0].contents.fp64_contents.extend([1.0, 2.0, 3.0])
    invalid(served, typed, "shape [2] needs 2 values but contents.fp64_contents holds 3")
    typed.inputs[0].shape[:] = [-1]
    invalid(served, typed, "shape [-1] has a negative dimension")


def test_bytes_that_are_no_request_are_invalid(served: Served) -> None:
    infer = served.channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    with pytest.raises(grpc.RpcError) as raised:
        infer(b"\xff\xff\xff\xff not protobuf", timeout=30)
    assert raised.value.code() is StatusCode.INVALID_ARGUMENT
    assert "not a valid ModelInferRequest" in raised.value.details()


def test_output_not_in_fp32_range_is_invalid_never_inf(served: Served) -> None:
    request = raw_request(
        "mse", {"predictions": [3.0e38], "targets": [-3.0e38]}, {"predictions": "FP32"}
    )
    invalid(served, request, "does not fit in FP32")


# ---- limits ---------------------------------------------------------------------------------


def test_limits_are_resource_exhausted() -> None:
    settings = Settings(grpc_port=0, max_body_bytes=4096, max_elements=100)
    with grpc_served(settings) as limited:
        too_many = raw_request("mse", {"predictions": [0.0] * 60, "targets": [0.0] * 60})
        error = limited.error("ModelInfer", too_many)
        assert error.code() is StatusCode.RESOURCE_EXHAUSTED
        assert "120 elements; the limit is 100 (LOSS_SERVICE_MAX_ELEMENTS)" in error.details()
        too_big = raw_request("mse", {"predictions": [0.0] * 400, "targets": [0.0] * 400})
        assert too_big.ByteSize() > 4096
        error = limited.error("ModelInfer", too_big)
        assert error.code() is StatusCode.RESOURCE_EXHAUSTED
        assert "4096" in error.details()  # grpc's own message names the limit
        fits = raw_request("mse", {"predictions": [1.0] * 40, "targets": [0.0] * 40})
        assert outputs_of(limited.call("ModelInfer", fits))["cost"][0] == 1.0


def test_the_byte_budget_refuses_as_overloaded() -> None:
    settings = Settings(grpc_port=0, max_in_flight_bytes=200)
    with grpc_served(settings) as limited:
        request = raw_request("mse", {"predictions": [0.0] * 20, "targets": [0.0] * 20})
        assert request.ByteSize() > 200
        error = limited.error("ModelInfer", request)
        assert error.code() is StatusCode.RESOURCE_EXHAUSTED
        assert "LOSS_SERVICE_MAX_IN_FLIGHT_BYTES" in error.details()
        assert limited.services.pipeline.admission.bytes == 0  # released


def test_inference_before_warm_up_is_unavailable() -> None:
    with grpc_served(ready=False) as warming:
        error = warming.error(
            "ModelInfer", raw_request("mse", {"predictions": [1.0], "targets": [1.0]})
        )
        assert error.code() is StatusCode.UNAVAILABLE
        assert "warming up" in error.details()
        assert warming.call("ServerLive", pb.ServerLiveRequest()).live is True
        assert warming.call("ServerReady", pb.ServerReadyRequest()).ready is False


# ---- keys, request ids ----------------------------------------------------------------------


def test_api_keys_in_metadata() -> None:
    with grpc_served(Settings(grpc_port=0, api_keys=("k-1", "k-2"))) as guarded:
        request = raw_request("mse", {"predictions": [2.0], "targets": [0.0]})
        for metadata in (None, [("authorization", "Bearer nope")], [("x-api-key", "k-3")]):
            error = guarded.error("ModelInfer", request, metadata)
            assert error.code() is StatusCode.UNAUTHENTICATED, metadata
        assert "API key" in guarded.error("ModelInfer", request).details()
        error = guarded.error("ModelMetadata", pb.ModelMetadataRequest(name="mse"))
        assert error.code() is StatusCode.UNAUTHENTICATED
        for metadata in ([("authorization", "Bearer k-1")], [("x-api-key", "k-2")]):
            response = guarded.call("ModelInfer", request, metadata)
            assert outputs_of(response)["cost"][0] == 4.0
        # Liveness and readiness stay open, as /v2/health/* do.
        assert guarded.call("ServerLive", pb.ServerLiveRequest()).live is True
        assert guarded.call("ServerReady", pb.ServerReadyRequest()).ready is True


def test_request_ids_come_back_in_trailing_metadata(served: Served) -> None:
    request = raw_request("mse", {"predictions": [1.0], "targets": [1.0]})
    _, call = served.stub.ModelInfer.with_call(
        request, metadata=[("x-request-id", "job-42")], timeout=30
    )
    assert dict(call.trailing_metadata())["x-request-id"] == "job-42"
    _, call = served.stub.ModelInfer.with_call(
        request, metadata=[("x-request-id", "bad id!")], timeout=30
    )
    generated = dict(call.trailing_metadata())["x-request-id"]
    assert generated != "bad id!" and len(generated) == 32
    request.model_name = "nope"
    error = served.error("ModelInfer", request, [("x-request-id", "job-43")])
    assert dict(error.trailing_metadata())["x-request-id"] == "job-43"


def test_parameters_of_every_kind_reach_the_loss(served: Served, client: TestClient) -> None:
    request = raw_request(
        "binary_cross_entropy", {"predictions": [0.3, -1.2], "targets": [1.0, 0.0]}
    )
    set_parameters(request.parameters, {"from_logits": True, "reduction": "sum"})
    outputs = outputs_of(served.call("ModelInfer", request))
    v1 = client.post(
        "/v1/losses/binary_cross_entropy",
        json={
            "predictions": [0.3, -1.2],
            "targets": [1.0, 0.0],
            "params": {"from_logits": True},
            "reduction": "sum",
        },
    ).json()
    assert_same_numbers(outputs, v1, rtol=0)
    # Hand value: softplus(-0.3) + softplus(-1.2)
    assert outputs["cost"][0] == pytest.approx(
        math.log1p(math.exp(-0.3)) + math.log1p(math.exp(-1.2))
    )
