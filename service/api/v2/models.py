"""Every loss as a model: names, versions and tensor metadata, derived from the registry.

``GET /v2/models/{loss}`` answers the protocol's model metadata: ``name`` (the canonical loss;
aliases resolve to it), ``versions`` (``["1"]``), ``platform`` and the ``inputs`` / ``outputs``
tensors with their datatype and shape. Shapes use ``-1`` for every dimension the request
chooses, with the rank of the loss's catalogue example; losses whose contract says ``(N, ...)``
accept other ranks too (``GET /v1/losses/{loss}`` states each contract). Only a dimension the
contract fixes (the 4 coordinates of a box) is a number.

Inputs: ``predictions``, ``targets`` (INT64 for integer-label losses, else FP64),
``sample_weight``, ``mask``, then the loss's array parameters (``class_weight``,
``target_lengths``, ...). All but ``predictions``, ``targets`` and a required parameter are
optional, and every input accepts FP32, FP64, INT32 and INT64. Outputs: ``per_sample``
``[-1]``, ``cost``, ``sum`` and ``weight_sum`` ``[1]``, ``gradient`` (the predictions' shape).
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import numpy as np

from service import __version__
from service.losses.registry import LossSpec

PLATFORM = "loss-service"
VERSION = "1"
TENSOR_INPUTS = ("predictions", "targets", "sample_weight", "mask")
OUTPUTS = ("per_sample", "cost", "gradient", "sum", "weight_sum")
EXTENSIONS = ("binary_tensor_data",)


def server_metadata() -> dict[str, Any]:
    """``GET /v2``: the protocol's server metadata."""
    return {"name": PLATFORM, "version": __version__, "extensions": list(EXTENSIONS)}


def array_params(spec: LossSpec) -> dict[str, str]:
    """The loss's params that take a list, sent as input tensors: name -> datatype."""
    found = {}
    for name, field in spec.params.model_fields.items():
        item = _list_item(field.annotation)
        if item is not None:
            found[name] = "INT64" if item is int else "FP64"
    return found


def _list_item(annotation: Any) -> type | None:
    """The item type of a ``list[...]`` inside an annotation (through unions), else None."""
    origin = get_origin(annotation)
    if origin is list:
        return _scalar(get_args(annotation)[0])
    if origin is Annotated:
        return _list_item(get_args(annotation)[0])
    if origin in (Union, UnionType):
        for member in get_args(annotation):
            item = _list_item(member)
            if item is not None:
                return item
    return None


def _scalar(annotation: Any) -> type:
    if get_origin(annotation) is Annotated:
        return _scalar(get_args(annotation)[0])
    return int if annotation is int else float


def _tensor(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape}


def predictions_shape(spec: LossSpec) -> list[int]:
    shape = [-1] * int(np.ndim(spec.example["predictions"]))
    if spec.contract.fixed_last_axis is not None:
        shape[-1] = spec.contract.fixed_last_axis
    return shape


def targets_shape(spec: LossSpec) -> list[int]:
    shape = [-1] * int(np.ndim(spec.example["targets"]))
    fixed = spec.contract.fixed_last_axis
    if fixed is not None and len(shape) == np.ndim(spec.example["predictions"]):
        shape[-1] = fixed
    return shape


def _mask_rank(spec: LossSpec) -> int:
    """The rank of the element grid, which the mask takes."""
    ranks = (np.ndim(spec.example["predictions"]), np.ndim(spec.example["targets"]))
    return spec.contract.mask_rank(*map(int, ranks))


def targets_datatype(spec: LossSpec) -> str:
    return "INT64" if spec.contract.integer_targets else "FP64"


def model_metadata(spec: LossSpec) -> dict[str, Any]:
    """``GET /v2/models/{loss}``."""
    predictions = predictions_shape(spec)
    targets = targets_shape(spec)
    inputs = [
        _tensor("predictions", "FP64", predictions),
        _tensor("targets", targets_datatype(spec), targets),
        _tensor("sample_weight", "FP64", [-1]),
        _tensor("mask", "FP64", [-1] * _mask_rank(spec)),
        *(_tensor(name, datatype, [-1]) for name, datatype in array_params(spec).items()),
    ]
    outputs = [
        _tensor("per_sample", "FP64", [-1]),
        _tensor("cost", "FP64", [1]),
        _tensor("gradient", "FP64", predictions),
        _tensor("sum", "FP64", [1]),
        _tensor("weight_sum", "FP64", [1]),
    ]
    return {
        "name": spec.name,
        "versions": [VERSION],
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs,
    }
