"""An inference request of the Open Inference Protocol v2, and its response (this module is
the ``/v2`` adapter of the scoring pipeline).

Request (KServe v2 "Inference Request JSON Object", with Triton's binary tensor extension)::

    {"id": "7", "parameters": {"reduction": "mean", "from_logits": true},
     "inputs": [{"name": "predictions", "shape": [2, 3], "datatype": "FP32",
                 "parameters": {"binary_data_size": 24}},
                {"name": "targets", "shape": [2], "datatype": "INT64", "data": [0, 2]},
                {"name": "class_weight", "shape": [3], "datatype": "FP64", "data": [1, 2, 1]}],
     "outputs": [{"name": "cost"}, {"name": "gradient", "parameters": {"binary_data": true}}]}

- Inputs ``predictions``, ``targets``, ``sample_weight``, ``mask``, and the loss's array
  params (``class_weight``, ``pos_weight``, ``input_lengths``, ``target_lengths``) by name;
  any other name is a 400 that lists the accepted ones.
- ``parameters``: ``reduction`` and the loss's scalar params, validated by the loss's params
  model exactly as ``/v1`` validates ``params`` (an unknown key is an error). Triton's own
  request parameters (``binary_data_output``, ``sequence_*``, ``priority``, ``timeout``,
  ``triton_*``) are read or ignored, never taken for loss params.
- ``outputs`` picks among ``per_sample``, ``cost``, ``gradient``, ``sum``, ``weight_sum``
  (default: all); the gradient is computed only when asked for. Each is returned as JSON
  ``data`` (flat) unless ``parameters.binary_data`` (or the request's ``binary_data_output``)
  asks for binary. The response echoes ``id`` and reports ``reduction`` and ``count`` (N) in
  its ``parameters``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from service.api import codec
from service.api.problems import BINARY, Reply
from service.api.v2 import inference, tensors
from service.api.v2.errors import MalformedTensorData, UnsupportedFeature
from service.api.v2.inference import TRITON_PARAMETERS, DecodedTensor
from service.api.v2.models import VERSION
from service.api.v2.transport import HEADER_LENGTH, Framing, decode_content, split_body
from service.compute.engine import LossResult
from service.compute.pipeline import Call
from service.losses.registry import LossSpec
from service.validation.errors import MalformedBody, StructureError
from service.validation.structure import structure_error

MAX_DIMENSIONS = 32
#: Each input's ``data`` is read as a JsonArray (no Python object per number).
TENSOR_DATA = {"inputs": frozenset({("*", "data")})}
#: Most inputs or outputs of one request (4 tensors and a few array params, 5 outputs): a longer
#: list is refused before its entries are checked one by one.
MAX_TENSORS = 16
OutputName = Literal["per_sample", "cost", "gradient", "sum", "weight_sum"]
Dimension = Annotated[int, Strict(), Field(ge=0)]


class InputTensor(BaseModel):
    """One request tensor: JSON ``data``, or ``parameters.binary_data_size`` bytes."""

    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[Dimension] = Field(max_length=MAX_DIMENSIONS)
    datatype: tensors.Datatype
    parameters: dict[str, Any] | None = None
    data: Any = None


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: OutputName
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InputTensor] = Field(min_length=1, max_length=MAX_TENSORS)
    outputs: list[RequestedOutput] | None = Field(None, max_length=MAX_TENSORS)


def decode(
    spec: LossSpec,
    content_encoding: str | None,
    header_length: str | None,
    max_body_bytes: int,
    body: bytes | bytearray,
    max_elements: int,
    reserve: Callable[[int], None] | None = None,
) -> Call:
    """Decode and validate an inference request (the pipeline's ``decode``, its first four
    arguments bound): inflate a compressed body (``reserve`` charges the inflated bytes),
    split the binary chunks off, read the JSON header and the tensors."""
    body = decode_content(body, content_encoding, max_body_bytes, reserve)
    framing = split_body(body, header_length)
    del body
    request = _parse_header(spec, framing)
    decoded = decode_inputs(spec, request.inputs, framing, max_elements)
    del framing
    parameters = dict(request.parameters or {})
    binary_default = inference.flag(
        parameters.pop("binary_data_output", False), "binary_data_output"
    )
    reduction = inference.reduction(parameters.pop("reduction", "mean"))
    params = inference.loss_params(spec, parameters, decoded)
    asked = [(output.name, output.parameters or {}) for output in request.outputs or ()]
    outputs = inference.requested_outputs(asked, binary_default)
    binary = any(outputs.values())
    call, datatype = inference.loss_call(spec, decoded, params, reduction, outputs, binary)
    return Call(call, partial(answer, spec, request.id, outputs, datatype))


def answer(
    spec: LossSpec,
    request_id: str | None,
    outputs: dict[str, bool],
    datatype: str,
    result: LossResult,
) -> Reply:
    """The JSON header (``outputs`` in the requested order), then any binary chunks, whose
    start the ``Inference-Header-Content-Length`` header gives."""
    values = inference.output_values(result)
    entries, chunks = [], []
    for name, binary in outputs.items():
        entry, raw = tensors.encode_output(name, values[name], datatype, binary)
        entries.append(entry)
        if raw is not None:
            chunks.append(raw)
    header: dict[str, Any] = {"model_name": spec.name, "model_version": VERSION}
    if request_id is not None:
        header["id"] = request_id
    header["parameters"] = {"reduction": result.reduction, "count": result.count}
    header["outputs"] = entries
    encoded = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return Reply(200, encoded)
    content = b"".join([encoded, *chunks])
    return Reply(200, content, BINARY, ((HEADER_LENGTH, str(len(encoded))),))


def _parse_header(spec: LossSpec, framing: Framing) -> InferRequest:
    # Request parameters: the loss's params, reduction, and Triton's own.
    also = (*TRITON_PARAMETERS, "reduction", "binary_data_output")
    closed = {"parameters": (spec.params.model_fields, also)}
    try:
        document = codec.read_request(framing.header, InferRequest, TENSOR_DATA, closed)
    except MalformedBody as error:
        if framing.has_binary_header:
            raise
        raise MalformedBody(
            f"{error.detail} (binary tensor data after the JSON needs the {HEADER_LENGTH} header)"
        ) from None
    try:
        return InferRequest.model_validate(document)
    except ValidationError as error:
        raise structure_error(error, InferRequest) from None


def decode_inputs(
    spec: LossSpec, inputs: list[InputTensor], framing: Framing, max_elements: int
) -> dict[str, DecodedTensor]:
    """Every input decoded (FP as float64, INT as exact int64: :class:`DecodedTensor`), after
    checking names, the element budget and the framing."""
    inference.check_inputs(spec, [(tensor.name, tensor.shape) for tensor in inputs], max_elements)
    chunks = binary_chunks(inputs, framing)
    decoded = {}
    for tensor in inputs:
        chunk = chunks.get(tensor.name)
        if chunk is None:
            values = tensors.from_json(tensor.name, tensor.datatype, tensor.shape, tensor.data)
        else:
            values = tensors.from_bytes(tensor.name, tensor.datatype, tensor.shape, chunk)
        decoded[tensor.name] = DecodedTensor(tensor.datatype, values)
    return decoded


def binary_chunks(inputs: list[InputTensor], framing: Framing) -> dict[str, memoryview]:
    """The binary section cut into one chunk per input that declares ``binary_data_size``, in
    the order of the inputs; the chunks must end exactly at the end of the body."""
    chunks: dict[str, memoryview] = {}
    offset = 0
    for tensor in inputs:
        size = _binary_size(tensor)
        if size is None:
            if tensor.data is None:
                raise StructureError(
                    ["body", "inputs", tensor.name],
                    f"{tensor.name} has neither data nor parameters.binary_data_size",
                )
            continue
        if tensor.data is not None:
            raise StructureError(
                ["body", "inputs", tensor.name],
                f"{tensor.name} has both data and parameters.binary_data_size; send one",
            )
        if not framing.has_binary_header:
            raise MalformedTensorData(
                f"{tensor.name} declares binary_data_size but the request has no "
                f"{HEADER_LENGTH} header saying where the JSON header ends"
            )
        expected = tensors.byte_size(tensor.shape, tensor.datatype)
        if size != expected:
            raise MalformedTensorData(
                f"{tensor.name} declares binary_data_size {size} but shape {tensor.shape} of "
                f"{tensor.datatype} takes {expected} bytes"
            )
        chunks[tensor.name] = framing.binary[offset : offset + size]
        offset += size
    available = len(framing.binary)
    if offset > available:
        raise MalformedTensorData(
            f"the inputs declare {offset} bytes of binary data but only {available} follow the "
            f"{HEADER_LENGTH} header; a chunk is missing or cut short"
        )
    if offset < available:
        raise MalformedTensorData(
            f"{available - offset} bytes follow the last binary chunk (the inputs declare "
            f"{offset} of the {available} after the JSON header); check {HEADER_LENGTH}"
        )
    return chunks


def _binary_size(tensor: InputTensor) -> int | None:
    parameters = tensor.parameters or {}
    for key in parameters:
        if key.startswith("shared_memory"):
            raise UnsupportedFeature(
                ["body", "inputs", tensor.name, "parameters", key],
                "shared memory is not supported; send the data inline (JSON or binary)",
            )
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise StructureError(
            ["body", "inputs", tensor.name, "parameters", "binary_data_size"],
            f"{tensor.name}: binary_data_size must be a non-negative integer, got {size!r}",
        )
    return size
