"""``ModelInfer`` as the scoring pipeline's adapter: a serialized ``ModelInferRequest`` in, a
serialized ``ModelInferResponse`` out, both on a compute thread (parsing and encoding are CPU
work; the event loop only moves bytes).

Request: ``model_name`` (a loss or an alias) and ``model_version`` (``""`` or ``"1"``);
``inputs`` named as over REST, their data either in ``contents`` (the field of the tensor's
datatype: ``fp32_contents``, ``fp64_contents``, ``int_contents`` for INT32, ``int64_contents``)
or, for every input at once, in ``raw_input_contents`` (one little-endian entry per input, in
the order of ``inputs``: what tritonclient sends); ``parameters``: ``reduction`` and the loss's
scalar params; ``outputs``: any of ``per_sample``, ``cost``, ``gradient``, ``sum``,
``weight_sum`` (default all). From there it is the REST request's path
(:mod:`service.api.v2.inference`): same checks, same messages.

Response: ``outputs`` (name, datatype, shape) with their data in ``raw_output_contents``, as
Triton answers; ``parameters`` ``reduction`` and ``count``; ``id`` echoed.

Tensor bytes are copied once each way. Protobuf would copy a request's raw inputs three times
(parsing, then each access of the field makes new ``bytes``) and a response's raw outputs
three times too (``bytes`` of the array, appending, serializing): for 1e6-entry tensors that
is tens of MB of fresh memory per call, most of what a call cost beyond the transport. So
:func:`split_raw_inputs` walks the request's top level and takes ``raw_input_contents`` out as
views of the message (protobuf parses the rest), and :func:`answer` serializes the response
without its raw outputs, then appends them in the wire format by hand (the same bytes as
protobuf's serializer: ``raw_output_contents`` is the last field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from service.api.v2 import inference, tensors
from service.api.v2.errors import UnknownModelVersion, UnsupportedFeature
from service.api.v2.inference import DecodedTensor
from service.api.v2.models import VERSION
from service.api.v2_grpc import grpc_predict_v2_pb2 as pb
from service.compute.engine import LossResult
from service.compute.pipeline import Call
from service.losses.registry import LossSpec, lookup
from service.validation.errors import MalformedBody, StructureError
from service.validation.finite import MAX_DIMENSIONS, require_finite

#: The ``contents`` field that carries each datatype's values.
CONTENTS = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
}
_ALL_CONTENTS = tuple(field.name for field in pb.InferTensorContents.DESCRIPTOR.fields)

_LENGTH_DELIMITED = 2
#: Field numbers of ``ModelInferRequest.raw_input_contents`` and
#: ``ModelInferResponse.raw_output_contents``.
RAW_INPUT_FIELD = pb.ModelInferRequest.DESCRIPTOR.fields_by_name["raw_input_contents"].number
RAW_OUTPUT_FIELD = pb.ModelInferResponse.DESCRIPTOR.fields_by_name["raw_output_contents"].number
#: Past this many top-level fields, :func:`split_raw_inputs` leaves the message to protobuf
#: (a Python loop over millions of tiny fields would cost more than the copies it saves).
MAX_SPLIT_FIELDS = 256
#: Smaller messages are parsed whole: copying their bytes costs less than the walk (~6 us).
SPLIT_FROM_BYTES = 65_536


class Label:
    """The canonical name of the model an RPC named, once known (for metrics and the log);
    set from the compute thread that decodes the request."""

    __slots__ = ("loss",)

    def __init__(self) -> None:
        self.loss = ""


def model(name: str, version: str, label: Label | None = None) -> LossSpec:
    """The loss served as model ``name`` at ``version`` (``""`` means the only one); a 404
    (NOT_FOUND) with close matches otherwise."""
    if label is not None:
        label.loss = "unknown"
    spec = lookup(name)
    if label is not None:
        label.loss = spec.name
    if version not in ("", VERSION):
        raise UnknownModelVersion(
            f"model {spec.name!r} has version {VERSION!r} only, got {version!r}",
            errors=[{"loc": ["model_version"], "msg": f"unknown version {version!r}"}],
        )
    return spec


def parameter_values(parameters: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """A protobuf parameter map as plain values (bool, int, str, float)."""
    values = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        values[key] = None if choice is None else getattr(parameter, choice)
    return values


def decode(
    label: Label, message: bytes, max_elements: int, _reserve: Callable[[int], None]
) -> Call:
    """The pipeline's ``decode`` for ``ModelInfer`` (``label`` bound): the message parsed, the
    model looked up, the tensors read and checked, the call to compute."""
    split = split_raw_inputs(message) if len(message) >= SPLIT_FROM_BYTES else None
    request = pb.ModelInferRequest()
    try:
        request.ParseFromString(message if split is None else split[0])
    except DecodeError as error:
        raise MalformedBody(f"the message is not a valid ModelInferRequest: {error}") from None
    del message  # the views of split, if any, hold it until the tensors are read
    raw: Sequence[bytes | memoryview] = request.raw_input_contents if split is None else split[1]
    del split
    spec = model(request.model_name, request.model_version, label)
    shapes = [(tensor.name, _shape(tensor)) for tensor in request.inputs]
    if not shapes:
        raise StructureError(["inputs"], "the request has no inputs; send predictions and targets")
    inference.check_inputs(spec, shapes, max_elements)
    if raw and len(raw) != len(shapes):
        raise StructureError(
            ["raw_input_contents"],
            f"raw_input_contents has {len(raw)} entries for {len(shapes)} inputs; send one per "
            "input, in the order of inputs, or put every input's data in its contents",
        )
    decoded = {}
    for position, tensor in enumerate(request.inputs):
        shape = shapes[position][1]
        values = _read(tensor, shape, raw[position] if raw else None)
        decoded[tensor.name] = DecodedTensor(tensor.datatype, values)
    del raw  # the message, when raw holds views of it
    parameters = parameter_values(request.parameters)
    parameters.pop("binary_data_output", None)  # REST's; over gRPC outputs are always raw
    reduction = inference.reduction(parameters.pop("reduction", "mean"))
    params = inference.loss_params(spec, parameters, decoded)
    asked = [(output.name, parameter_values(output.parameters)) for output in request.outputs]
    outputs = list(inference.requested_outputs(asked))
    call, datatype = inference.loss_call(spec, decoded, params, reduction, outputs, binary=True)
    return Call(call, partial(answer, spec, request.id, outputs, datatype))


def split_raw_inputs(message: bytes) -> tuple[bytes, list[memoryview]] | None:
    """``message`` without its ``raw_input_contents`` fields, and their contents as views of
    ``message``, in order; or None, to let protobuf parse the message whole: when it has no
    such field, or when this walk of its top-level fields meets anything but plain fields
    (a group, an invalid wire type, field number 0, a truncated field, a field 7 written
    otherwise than protobuf writes ``raw_input_contents``, more than :data:`MAX_SPLIT_FIELDS`).

    Protobuf parsing the rest gives the message it would parse from ``message``, less
    ``raw_input_contents``: the other fields keep their bytes and order (so the last of a
    singular field still wins and repeated ones keep their order), and a message protobuf
    refuses is refused with the same error: each field taken out is one protobuf reads the
    same way (a one-byte tag, a minimal length), and whatever it would stop at before or after
    one stays in the rest.
    """
    end = len(message)
    view = memoryview(message)
    rest: list[memoryview] = []
    raw: list[memoryview] = []
    kept = position = fields = 0  # the rest's current run starts at kept
    while position < end:
        fields += 1
        if fields > MAX_SPLIT_FIELDS:
            return None
        start = position
        tag, position = _varint(message, position, end)
        field, wire_type = tag >> 3, tag & 7
        if field == 0:  # or a truncated tag
            return None
        if field == RAW_INPUT_FIELD:
            if position - start != 1 or wire_type != _LENGTH_DELIMITED:
                return None
            length, after = _varint(message, position, end)
            if after < 0 or after - position > 5 or not _minimal(message, position, after):
                return None
            if length > end - after:
                return None
            if start > kept:
                rest.append(view[kept:start])
            raw.append(view[after : after + length])
            position = kept = after + length
        elif wire_type == 0:
            position = _varint(message, position, end)[1]
            if position < 0:
                return None
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _varint(message, position, end)
            if position < 0:
                return None
            position += length
        else:  # groups (3, 4) and the invalid wire types 6 and 7: protobuf's to read
            return None
        if position > end:
            return None
    if not raw:
        return None
    if kept < end:
        rest.append(view[kept:end])
    return b"".join(rest), raw


def _varint(data: bytes, position: int, end: int) -> tuple[int, int]:
    """The varint at ``position`` and the position after it; (0, -1) if it is truncated or
    longer than 10 bytes."""
    value = shift = 0
    while position < end and shift < 70:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
    return 0, -1


def _minimal(data: bytes, start: int, end: int) -> bool:
    """Whether the varint in ``data[start:end]`` is written in its fewest bytes."""
    return end - start == 1 or data[end - 1] != 0


def varint(value: int) -> bytes:
    """``value`` (>= 0) as a protobuf varint."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_RAW_OUTPUT_TAG = varint(RAW_OUTPUT_FIELD << 3 | _LENGTH_DELIMITED)


def _shape(tensor: pb.ModelInferRequest.InferInputTensor) -> list[int]:
    shape = list(tensor.shape)
    if len(shape) > MAX_DIMENSIONS:
        raise StructureError(
            ["inputs", tensor.name, "shape"],
            f"{tensor.name}: shape has {len(shape)} dimensions; at most {MAX_DIMENSIONS}",
        )
    if any(size < 0 for size in shape):
        raise StructureError(
            ["inputs", tensor.name, "shape"],
            f"{tensor.name}: shape {shape} has a negative dimension",
        )
    return shape


def _read(
    tensor: pb.ModelInferRequest.InferInputTensor, shape: list[int], raw: bytes | memoryview | None
) -> np.ndarray:
    """One input's values: float64 (finite) for FP datatypes, exact int64 for INT ones."""
    name, datatype = tensor.name, tensor.datatype
    if datatype not in CONTENTS:
        raise StructureError(
            ["inputs", name, "datatype"],
            f"{name}: datatype {datatype!r} is not supported; send FP32, FP64, INT32 or INT64",
        )
    for key in tensor.parameters:
        if key.startswith("shared_memory"):
            raise UnsupportedFeature(
                ["inputs", name, "parameters", key],
                "shared memory is not supported; send the data in raw_input_contents or contents",
            )
    sent = [field for field in _ALL_CONTENTS if len(getattr(tensor.contents, field))]
    if raw is not None:
        if sent:
            raise StructureError(
                ["inputs", name, "contents"],
                f"{name} has data both in raw_input_contents and in contents.{sent[0]}; send one",
            )
        expected = tensors.byte_size(shape, datatype)
        if len(raw) != expected:
            raise StructureError(
                ["raw_input_contents", name],
                f"{name}: raw_input_contents holds {len(raw)} bytes but shape {shape} of "
                f"{datatype} takes {expected}",
            )
        return tensors.from_bytes(name, datatype, shape, memoryview(raw))
    field = CONTENTS[datatype]
    wrong = [other for other in sent if other != field]
    if wrong:
        raise StructureError(
            ["inputs", name, "contents", wrong[0]],
            f"{name}: a {datatype} tensor's data goes in contents.{field}, got contents.{wrong[0]}",
        )
    contents = getattr(tensor.contents, field)
    expected_count = tensors.element_count(shape)
    if len(contents) != expected_count:
        raise StructureError(
            ["inputs", name, "contents", field],
            f"{name}: shape {shape} needs {expected_count} values but contents.{field} holds "
            f"{len(contents)}",
        )
    if datatype in tensors.INTEGER_DATATYPES:
        return np.array(contents, dtype=np.int64).reshape(shape)
    array = np.array(contents, dtype=np.float64).reshape(shape)
    require_finite(array, name)
    return array


def answer(
    spec: LossSpec, request_id: str, outputs: list[str], datatype: str, result: LossResult
) -> bytes:
    """The serialized ``ModelInferResponse``: the outputs asked for, in their order, as raw
    little-endian bytes.

    Protobuf serializes the response without ``raw_output_contents``; each output's bytes then
    follow as that field's entries (tag, length, bytes), copied from the arrays once, into the
    answer. The field is the message's last, where protobuf's serializer puts it: the bytes
    are those it would write (tests/api/test_v2_grpc_adapter.py)."""
    values = inference.output_values(result)
    response = pb.ModelInferResponse(model_name=spec.name, model_version=VERSION, id=request_id)
    response.parameters["reduction"].string_param = result.reduction
    response.parameters["count"].int64_param = result.count
    pieces: list[bytes | memoryview] = [b""]
    for name in outputs:
        entry, raw = tensors.encode_output(name, values[name], datatype, binary=True)
        assert raw is not None  # binary=True
        response.outputs.add(name=name, datatype=datatype, shape=entry["shape"])
        pieces += (_RAW_OUTPUT_TAG, varint(raw.nbytes), raw)
    pieces[0] = response.SerializeToString()
    return b"".join(pieces)
