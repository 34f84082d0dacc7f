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
from dataclasses import dataclass
from functools import cache, cached_property, partial
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, create_model

from service.api import codec
from service.api.problems import BINARY, Reply
from service.api.v2 import tensors
from service.api.v2.errors import MalformedTensorData, UnsupportedFeature
from service.api.v2.models import OUTPUTS, TENSOR_INPUTS, VERSION, array_params
from service.api.v2.transport import HEADER_LENGTH, Framing, decode_content, split_body
from service.compute.engine import LossCall, LossResult
from service.compute.pipeline import Call
from service.losses.registry import LossSpec
from service.reduction import Reduction
from service.validation.contracts import Inputs
from service.validation.errors import MalformedBody, PayloadTooLarge, StructureError
from service.validation.structure import structure_error

MAX_DIMENSIONS = 32
#: Each input's ``data`` is read as a JsonArray (no Python object per number).
TENSOR_DATA = {"inputs": frozenset({("*", "data")})}
#: Most inputs or outputs of one request (4 tensors and a few array params, 5 outputs): a longer
#: list is refused before its entries are checked one by one.
MAX_TENSORS = 16
#: Request parameters Triton defines for itself (tritonclient refuses them as custom ones).
TRITON_PARAMETERS = frozenset(
    {"sequence_id", "sequence_start", "sequence_end", "priority", "timeout", "headers"}
)
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


@dataclass(frozen=True)
class DecodedTensor:
    """One input as sent: ``values`` are int64 (the exact integers) for INT32 / INT64 tensors,
    float64 for FP32 / FP64 ones; C-contiguous, finite. ``array`` is float64, for the loss's
    arithmetic (the tensor inputs), converted once, when first read."""

    datatype: str
    values: np.ndarray

    @cached_property
    def array(self) -> np.ndarray:
        if self.values.dtype == np.float64:
            return self.values
        return self.values.astype(np.float64)


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
    binary_default = _flag(parameters.pop("binary_data_output", False), "binary_data_output")
    reduction = _reduction(parameters.pop("reduction", "mean"))
    params = loss_params(spec, parameters, decoded)
    outputs = requested_outputs(request.outputs, binary_default)
    for required in ("predictions", "targets"):
        if required not in decoded:
            raise StructureError(
                ["body", "inputs"], f"the input {required!r} is required (inputs: {list(decoded)})"
            )
    inputs = Inputs(**{name: decoded[name].array for name in TENSOR_INPUTS if name in decoded})
    datatype = tensors.output_datatype(decoded["predictions"].datatype)
    binary = any(outputs.values())
    call = LossCall(spec, inputs, params, reduction, "gradient" in outputs, binary)
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
    values: dict[str, np.ndarray] = {
        "per_sample": result.per_sample,
        "cost": np.array([result.cost]),
        "gradient": result.gradient if result.gradient is not None else np.empty(0),
        "sum": np.array([result.sum]),
        "weight_sum": np.array([result.weight_sum]),
    }
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


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise StructureError(
            ["body", "parameters", name], f"{name} must be true or false, got {value!r}"
        )
    return value


def _reduction(value: Any) -> Reduction:
    if value not in ("mean", "sum"):
        raise StructureError(
            ["body", "parameters", "reduction"],
            f"reduction must be 'mean' or 'sum', got {value!r}",
        )
    return value


def decode_inputs(
    spec: LossSpec, inputs: list[InputTensor], framing: Framing, max_elements: int
) -> dict[str, DecodedTensor]:
    """Every input decoded (FP as float64, INT as exact int64: :class:`DecodedTensor`), after
    checking names, the element budget and the framing."""
    accepted = (*TENSOR_INPUTS, *array_params(spec))
    names = [tensor.name for tensor in inputs]
    unknown = [name for name in names if name not in accepted]
    if unknown:
        raise StructureError(
            ["body", "inputs", unknown[0]],
            f"unknown input(s) {', '.join(map(repr, unknown))} for {spec.name}; "
            f"accepted: {', '.join(accepted)}",
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise StructureError(
            ["body", "inputs", repeated[0]], f"input {repeated[0]!r} is given more than once"
        )
    elements = sum(tensors.element_count(tensor.shape) for tensor in inputs)
    if elements > max_elements:
        raise PayloadTooLarge(
            f"the inputs hold {elements} elements; the limit is {max_elements} "
            "(LOSS_SERVICE_MAX_ELEMENTS)"
        )
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


@cache
def parameters_model(spec: LossSpec) -> type[BaseModel]:
    """A wrapper holding the loss's params model under ``params``, so validation messages are
    those of ``/v1``."""
    title = "".join(part.capitalize() for part in spec.name.split("_"))
    return create_model(f"{title}InferenceParameters", params=(spec.params, ...))


def loss_params(
    spec: LossSpec, parameters: dict[str, Any], decoded: dict[str, DecodedTensor]
) -> Any:
    """The loss's params: scalar request parameters plus array params sent as inputs (INT
    tensors as the exact integers sent, never through float64)."""
    values = {
        name: value
        for name, value in parameters.items()
        if name not in TRITON_PARAMETERS and not name.startswith("triton_")
    }
    for name in array_params(spec):
        if name not in decoded:
            continue
        if name in values:
            raise StructureError(
                ["body", "parameters", name],
                f"{name} is given both as an input and as a parameter; send it once",
            )
        values[name] = tensors.as_parameter(decoded[name].values)
    model = parameters_model(spec)
    try:
        codec.refuse_unknown(values, spec.params.model_fields, field="params")
        return model.model_validate({"params": values}).params  # type: ignore[attr-defined]
    except ValidationError as error:
        raise _relocated(structure_error(error, model), set(decoded)) from None
    except StructureError as error:
        raise _relocated(error, set(decoded)) from None


def _relocated(error: StructureError, inputs: set[str]) -> StructureError:
    """``["body", "params", key, ...]`` as ``["body", "parameters" or "inputs", key, ...]``."""
    items = []
    for item in error.errors or []:
        loc = list(item["loc"])
        if loc[:2] == ["body", "params"]:
            where = "inputs" if len(loc) > 2 and loc[2] in inputs else "parameters"
            loc = ["body", where, *loc[2:]]
        items.append({**item, "loc": loc})
    first, *more = items
    return StructureError(first["loc"], first["msg"], more, error.unlisted)


def requested_outputs(
    outputs: list[RequestedOutput] | None, binary_default: bool
) -> dict[str, bool]:
    """Output name -> whether it is sent as binary; every output when none is named."""
    if not outputs:
        return dict.fromkeys(OUTPUTS, binary_default)
    chosen: dict[str, bool] = {}
    for output in outputs:
        if output.name in chosen:
            raise StructureError(
                ["body", "outputs", output.name], f"output {output.name!r} is requested twice"
            )
        parameters = output.parameters or {}
        for key in parameters:
            if key == "classification" or key.startswith("shared_memory"):
                raise UnsupportedFeature(
                    ["body", "outputs", output.name, "parameters", key],
                    f"the output parameter {key!r} is not supported by this server",
                )
        chosen[output.name] = _flag(parameters.get("binary_data", binary_default), "binary_data")
    return chosen
