"""An inference request of the Open Inference Protocol, whatever carries it: REST with JSON or
Triton's binary tensors (:mod:`service.api.v2.protocol`), or gRPC (:mod:`service.api.v2_grpc`).

Each transport reads its tensors and parameters its own way; from there on the steps are
these, shared, so both transports accept the same requests and say the same things about the
ones they refuse: the inputs' names and element budget (:func:`check_inputs`), ``reduction``
and the loss's params from the request ``parameters`` and the array-param inputs
(:func:`loss_params`), the requested outputs (:func:`requested_outputs`), then the pipeline's
:class:`~service.compute.engine.LossCall` (:func:`loss_call`) and, once computed, the output
tensors by name (:func:`output_values`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError, create_model

from service.api import codec
from service.api.v2 import tensors
from service.api.v2.errors import UnsupportedFeature
from service.api.v2.models import OUTPUTS, TENSOR_INPUTS, array_params
from service.compute.engine import LossCall, LossResult
from service.losses.registry import LossSpec
from service.reduction import Reduction
from service.validation.contracts import Inputs
from service.validation.errors import PayloadTooLarge, StructureError
from service.validation.structure import structure_error

#: Request parameters Triton defines for itself (tritonclient refuses them as custom ones).
TRITON_PARAMETERS = frozenset(
    {"sequence_id", "sequence_start", "sequence_end", "priority", "timeout", "headers"}
)


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


def check_inputs(
    spec: LossSpec, shapes: Sequence[tuple[str, Sequence[int]]], max_elements: int
) -> None:
    """The inputs' names (each accepted, none twice) and their element count, from the
    ``(name, shape)`` each declares, before any data is read."""
    accepted = (*TENSOR_INPUTS, *array_params(spec))
    names = [name for name, _ in shapes]
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
    elements = sum(tensors.element_count(shape) for _, shape in shapes)
    if elements > max_elements:
        raise PayloadTooLarge(
            f"the inputs hold {elements} elements; the limit is {max_elements} "
            "(LOSS_SERVICE_MAX_ELEMENTS)"
        )


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise StructureError(
            ["body", "parameters", name], f"{name} must be true or false, got {value!r}"
        )
    return value


def reduction(value: Any) -> Reduction:
    if value not in ("mean", "sum"):
        raise StructureError(
            ["body", "parameters", "reduction"],
            f"reduction must be 'mean' or 'sum', got {value!r}",
        )
    return value


@cache
def parameters_model(spec: LossSpec) -> type[BaseModel]:
    """A wrapper holding the loss's params model under ``params``, so validation messages are
    those of ``/v1``."""
    title = "".join(part.capitalize() for part in spec.name.split("_"))
    return create_model(f"{title}InferenceParameters", params=(spec.params, ...))


def loss_params(
    spec: LossSpec, parameters: Mapping[str, Any], decoded: Mapping[str, DecodedTensor]
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
    outputs: Sequence[tuple[str, Mapping[str, Any]]] | None, binary_default: bool = False
) -> dict[str, bool]:
    """Output name -> whether it is sent as binary (``parameters.binary_data``, REST only),
    from the ``(name, parameters)`` of each requested output; every output when none is."""
    if not outputs:
        return dict.fromkeys(OUTPUTS, binary_default)
    chosen: dict[str, bool] = {}
    for name, parameters in outputs:
        if name not in OUTPUTS:
            raise StructureError(
                ["body", "outputs", name],
                f"unknown output {name!r}; the outputs are {', '.join(OUTPUTS)}",
            )
        if name in chosen:
            raise StructureError(["body", "outputs", name], f"output {name!r} is requested twice")
        for key in parameters:
            if key == "classification" or key.startswith("shared_memory"):
                raise UnsupportedFeature(
                    ["body", "outputs", name, "parameters", key],
                    f"the output parameter {key!r} is not supported by this server",
                )
        chosen[name] = flag(parameters.get("binary_data", binary_default), "binary_data")
    return chosen


def loss_call(
    spec: LossSpec,
    decoded: Mapping[str, DecodedTensor],
    params: Any,
    reduction: Reduction,
    outputs: Collection[str],
    binary: bool,
) -> tuple[LossCall, tensors.Datatype]:
    """What the pipeline computes (the gradient only when it is an output), and the outputs'
    datatype (the predictions' float type)."""
    for required in ("predictions", "targets"):
        if required not in decoded:
            raise StructureError(
                ["body", "inputs"], f"the input {required!r} is required (inputs: {list(decoded)})"
            )
    inputs = Inputs(**{name: decoded[name].array for name in TENSOR_INPUTS if name in decoded})
    datatype = tensors.output_datatype(decoded["predictions"].datatype)
    call = LossCall(spec, inputs, params, reduction, "gradient" in outputs, binary)
    return call, datatype


def output_values(result: LossResult) -> dict[str, np.ndarray]:
    """Every output tensor of a result, by name."""
    return {
        "per_sample": result.per_sample,
        "cost": np.array([result.cost]),
        "gradient": result.gradient if result.gradient is not None else np.empty(0),
        "sum": np.array([result.sum]),
        "weight_sum": np.array([result.weight_sum]),
    }
