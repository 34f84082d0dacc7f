"""``ModelInfer``'s hand-written wire format (service/api/v2_grpc/adapter.py): the response's
raw outputs appended by hand are the bytes protobuf's serializer writes, and a request split
into its raw inputs and the rest is the message protobuf parses, refused with the same error
when protobuf refuses it."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from service.api.v2_grpc import adapter
from service.api.v2_grpc import grpc_predict_v2_pb2 as pb
from service.compute.engine import LossResult
from service.losses.registry import lookup

OUTPUTS = ["per_sample", "cost", "gradient", "sum", "weight_sum"]


def result(per_sample: np.ndarray, gradient: np.ndarray | None) -> LossResult:
    return LossResult(
        loss="mse",
        reduction="mean",
        cost=0.25,
        per_sample=per_sample,
        gradient=gradient,
        sum=1.5,
        weight_sum=6.0,
        count=len(per_sample),
    )


def by_protobuf(
    outputs: list[str], datatype: str, request_id: str, loss: LossResult
) -> pb.ModelInferResponse:
    """The response as protobuf builds it: every raw output appended to the message."""
    values = {
        "per_sample": loss.per_sample,
        "cost": np.array([loss.cost]),
        "gradient": loss.gradient if loss.gradient is not None else np.empty(0),
        "sum": np.array([loss.sum]),
        "weight_sum": np.array([loss.weight_sum]),
    }
    response = pb.ModelInferResponse(model_name="mse", model_version="1", id=request_id)
    response.parameters["reduction"].string_param = loss.reduction
    response.parameters["count"].int64_param = loss.count
    dtype = "<f4" if datatype == "FP32" else "<f8"
    for name in outputs:
        array = np.ascontiguousarray(values[name], dtype=dtype)
        response.outputs.add(name=name, datatype=datatype, shape=list(array.shape))
        response.raw_output_contents.append(array.tobytes())
    return response


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
@pytest.mark.parametrize(
    "outputs", [OUTPUTS, ["gradient"], ["cost", "sum"], [], ["weight_sum", "per_sample"]]
)
@pytest.mark.parametrize("request_id", ["", "call-7"])
def test_the_answer_is_the_bytes_protobuf_writes(
    datatype: str, outputs: list[str], request_id: str
) -> None:
    rng = np.random.default_rng(3)
    loss = result(rng.normal(size=4), rng.normal(size=(4, 3)))
    answer = adapter.answer(lookup("mse"), request_id, outputs, datatype, loss)
    expected = by_protobuf(outputs, datatype, request_id, loss)
    assert pb.ModelInferResponse.FromString(answer) == expected
    assert answer == expected.SerializeToString()


@pytest.mark.parametrize("size", [0, 1, 15, 16, 127, 128, 16_383, 16_384, 100_000])
def test_raw_outputs_of_every_length_class(size: int) -> None:
    """Lengths whose varint takes one, two and three bytes (and empty outputs: no gradient)."""
    loss = result(np.arange(size, dtype=np.float64), None)
    answer = adapter.answer(lookup("mse"), "x", OUTPUTS, "FP64", loss)
    expected = by_protobuf(OUTPUTS, "FP64", "x", loss)
    assert pb.ModelInferResponse.FromString(answer) == expected
    assert answer == expected.SerializeToString()


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31, 2**63 - 1])
def test_varint(value: int) -> None:
    assert adapter._varint(adapter.varint(value), 0, 10) == (value, len(adapter.varint(value)))


def request(raw: list[bytes], **fields) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor
    message = pb.ModelInferRequest(
        model_name="mse",
        id="r1",
        inputs=[
            tensor(name=f"t{i}", datatype="FP64", shape=[len(chunk) // 8])
            for i, chunk in enumerate(raw)
        ],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="cost")],
        raw_input_contents=raw,
        **fields,
    )
    message.parameters["reduction"].string_param = "sum"
    return message


def joined(message: bytes) -> pb.ModelInferRequest:
    """What the split gives back: the rest parsed, the raw inputs appended."""
    split = adapter.split_raw_inputs(message)
    assert split is not None
    rest, raw = split
    parsed = pb.ModelInferRequest.FromString(rest)
    assert not parsed.raw_input_contents
    parsed.raw_input_contents.extend(bytes(chunk) for chunk in raw)
    return parsed


@pytest.mark.parametrize("sizes", [[8, 8], [0, 8], [800_000, 80], [8], [8, 8, 8]])
def test_a_split_request_is_the_message_protobuf_parses(sizes: list[int]) -> None:
    rng = np.random.default_rng(1)
    message = request([rng.bytes(size) for size in sizes])
    assert joined(message.SerializeToString()) == message


def test_raw_inputs_are_views_of_the_message() -> None:
    message = request([b"a" * 80, b"b" * 800]).SerializeToString()
    _, raw = adapter.split_raw_inputs(message)  # type: ignore[misc]
    assert [chunk.obj for chunk in raw] == [message, message]
    assert [bytes(chunk) for chunk in raw] == [b"a" * 80, b"b" * 800]


def field(number: int, payload: bytes) -> bytes:
    return adapter.varint(number << 3 | 2) + adapter.varint(len(payload)) + payload


def test_fields_in_any_order_keep_their_order_and_the_last_singular_wins() -> None:
    """Raw inputs before, between and after the other fields; model_name twice; an unknown
    field and a field 7 of another wire type nowhere (that one is protobuf's to read)."""
    inputs = pb.ModelInferRequest(inputs=[{"name": "a"}, {"name": "b"}]).SerializeToString()
    message = b"".join(
        [
            field(7, b"first"),
            field(1, b"loss"),
            inputs,
            field(7, b""),
            field(99, b"unknown"),
            field(1, b"mse"),
            field(7, b"third"),
        ]
    )
    whole = pb.ModelInferRequest.FromString(message)
    assert whole.model_name == "mse"
    assert list(whole.raw_input_contents) == [b"first", b"", b"third"]
    assert joined(message) == whole
    # the unknown field is kept, where protobuf keeps it
    assert joined(message).SerializeToString() == whole.SerializeToString()


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"", id="empty"),
        pytest.param(request([]).SerializeToString(), id="no raw inputs"),
        pytest.param(field(7, b"x") + b"\x38\x01", id="field 7 as a varint"),
        pytest.param(b"\xba\x00\x01x", id="field 7 with a two-byte tag"),
        pytest.param(b"\x3a\x81\x00x", id="a length not in its fewest bytes"),
        pytest.param(field(7, b"x") + b"\x3a\x05ab", id="truncated raw input"),
        pytest.param(field(7, b"x") + b"\x0a\x05ab", id="truncated string"),
        pytest.param(field(7, b"x") + b"\x0b\x0c", id="a group"),
        pytest.param(field(7, b"x") + b"\x0e", id="wire type 6"),
        pytest.param(field(7, b"x") + b"\x00\x01", id="field number 0"),
        pytest.param(field(7, b"x") + b"\x90", id="truncated tag"),
        pytest.param(field(7, b"x") + b"\x08" + b"\xff" * 10 + b"\x01", id="11-byte varint"),
        pytest.param(field(7, b"x") + b"\x11abc", id="truncated fixed64"),
        pytest.param(field(7, b"x") + b"\x08\x01" * adapter.MAX_SPLIT_FIELDS, id="too many fields"),
    ],
)
def test_what_the_walk_does_not_follow_goes_to_protobuf_whole(message: bytes) -> None:
    assert adapter.split_raw_inputs(message) is None


def outcome(parse, message: bytes) -> tuple[str, object]:
    try:
        return "ok", parse(message)
    except DecodeError as error:
        return "refused", str(error)


def split_outcome(message: bytes) -> tuple[str, object]:
    split = adapter.split_raw_inputs(message)
    if split is None:
        return outcome(pb.ModelInferRequest.FromString, message)
    kind, parsed = outcome(pb.ModelInferRequest.FromString, split[0])
    if kind == "ok":
        parsed.raw_input_contents.extend(bytes(chunk) for chunk in split[1])  # type: ignore[attr-defined]
    return kind, parsed


pieces = st.one_of(
    st.binary(max_size=6),  # junk
    st.builds(field, st.sampled_from([1, 2, 3, 5, 6, 7, 7, 7, 12]), st.binary(max_size=12)),
    st.just(request([b"12345678", b""]).SerializeToString()),
    st.just(b"\x0a\x02\xff\xfe"),  # a string that is not UTF-8
    st.just(b"\x2a\x03\x0a\x01\x80"),  # an input whose name is not UTF-8
    st.just(b"\x08\x96\x01"),  # field 1 as a varint: protobuf's business
)


@given(st.lists(pieces, max_size=8).map(b"".join))
def test_split_or_not_protobuf_says_the_same(message: bytes) -> None:
    assert split_outcome(message) == outcome(pb.ModelInferRequest.FromString, message)


def test_decode_reads_the_same_call_split_or_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    predictions, targets = rng.normal(size=(300, 40)), rng.normal(size=(300, 40))
    message = pb.ModelInferRequest(
        model_name="mse",
        id="same",
        inputs=[
            {"name": "predictions", "datatype": "FP64", "shape": [300, 40]},
            {"name": "targets", "datatype": "FP32", "shape": [300, 40]},
        ],
        raw_input_contents=[predictions.tobytes(), targets.astype("<f4").tobytes()],
    ).SerializeToString()
    assert len(message) >= adapter.SPLIT_FROM_BYTES

    def answer() -> bytes:
        call = adapter.decode(adapter.Label(), message, 10**7, lambda _: None)
        return call.answer(call.computation.execute(1))

    split = answer()
    monkeypatch.setattr(adapter, "split_raw_inputs", lambda _: None)
    assert answer() == split
    response = pb.ModelInferResponse.FromString(split)
    names = [tensor.name for tensor in response.outputs]
    cost = np.frombuffer(response.raw_output_contents[names.index("cost")], dtype="<f8")
    difference = predictions - targets.astype(np.float32).astype(np.float64)
    assert cost[0] == pytest.approx(np.mean(difference**2), rel=1e-12)
