"""The ``/v1`` adapter of ``POST /v1/losses/{name}``: a JSON body to the pipeline's
:class:`~service.compute.engine.LossCall`, and its result to the JSON answer.

The per-loss request model validates everything but the arrays with Pydantic (types,
``reduction``, ``include``, the loss's ``params`` with ``extra="forbid"``). Arrays are typed
``Any`` for Pydantic, so it never walks them float by float, and are converted by
:func:`service.api.codec.to_array` in one NumPy call each. The same models document each
operation in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from service.api import codec
from service.api.problems import Reply, problem_reply
from service.api.routes import Request
from service.api.scoring import score
from service.api.v1.fields import (
    ALL_OUTPUTS,
    MAX_INCLUDE,
    ElementBudget,
    NumberArray,
    Output,
    read_inputs,
)
from service.compute.engine import LossCall, LossResult
from service.compute.pipeline import Call
from service.losses.registry import LossSpec
from service.reduction import Reduction
from service.validation.contracts import Inputs
from service.validation.errors import ServiceError
from service.validation.structure import structure_error


class LossRequest(BaseModel):
    """Fields shared by every loss; each loss's model adds its own ``params``."""

    model_config = ConfigDict(extra="forbid")

    predictions: NumberArray = Field(description="Predictions (or logits), shape (N, ...).")
    targets: NumberArray = Field(description="Targets; the shape the loss's contract requires.")
    sample_weight: NumberArray | None = Field(
        None, description="Per-sample weights, shape (N,), >= 0. Default all 1."
    )
    mask: NumberArray | None = Field(
        None, description="Element mask, the shape of the loss's element grid, values in [0, 1]."
    )
    reduction: Reduction = Field(
        "mean", description="'mean': weighted mean over elements; 'sum': weighted sum."
    )
    include: list[Output] = Field(
        default_factory=lambda: list(ALL_OUTPUTS),  # a factory: no deepcopy per request
        max_length=MAX_INCLUDE,
        description="Which of cost, per_sample, gradient to return.",
    )


class LossResponse(BaseModel):
    """The response of ``POST /v1/losses/{name}``; ``include`` may leave out the first three."""

    loss: str = Field(description="Canonical name of the loss.")
    reduction: Reduction
    cost: float | None = Field(None, description="Weighted mean (or sum) of element losses.")
    per_sample: list[float] | None = Field(None, description="Weighted mean loss of each sample.")
    gradient: NumberArray | None = Field(
        None, description="d cost / d predictions, same shape as predictions."
    )
    sum: float = Field(description="Sum of weight x element loss (for merging shards).")
    weight_sum: float = Field(description="Sum of element weights (for merging shards).")
    count: int = Field(description="Number of samples N.")
    extras: dict[str, Any] = Field(default_factory=dict, description="Loss-specific outputs.")


@cache
def request_model(spec: LossSpec) -> type[LossRequest]:
    """``<Name>Request``: the shared fields plus this loss's params model."""
    title = "".join(part.capitalize() for part in spec.name.split("_"))
    return create_model(
        f"{title}Request",
        __base__=LossRequest,
        __doc__=f"Request body of POST /v1/losses/{spec.name}.",
        params=(
            cast(Any, spec.params | None),
            Field(None, description=f"Parameters of {spec.name}."),
        ),
    )


@dataclass(frozen=True)
class ParsedRequest:
    inputs: Inputs
    params: Any
    reduction: Reduction
    include: frozenset[str]


async def handle(request: Request) -> Reply:
    """``POST /v1/losses/{name}``: one loss (a name or an alias)."""
    try:
        spec = request.named_loss()
        codec.check_json_content_type(request.header(b"content-type"))
    except ServiceError as error:
        return problem_reply(error)
    return await score(request, partial(decode, spec))


def decode(
    spec: LossSpec, body: bytes | bytearray, max_elements: int, _reserve: Callable[[int], None]
) -> Call:
    """Read and validate one loss's request (the pipeline's ``decode``)."""
    closed = {"params": (spec.params.model_fields, ())}
    document = codec.read_request(body, request_model(spec), codec.TENSOR_ARRAYS, closed)
    booleans = codec.may_hold_booleans(body)
    request = parse(spec, document, max_elements, check_booleans=booleans)
    del document
    gradient = "gradient" in request.include
    call = LossCall(spec, request.inputs, request.params, request.reduction, gradient)
    return Call(call, partial(answer, request.include))


def answer(include: frozenset[str], result: LossResult) -> Reply:
    return Reply(200, codec.encode(render(result, include)))


def parse(
    spec: LossSpec, document: dict[str, Any], max_elements: int, *, check_booleans: bool = True
) -> ParsedRequest:
    """Validate a request document (:func:`service.api.codec.read_request` refused its unknown keys
    already) into arrays, params, reduction and outputs."""
    model = request_model(spec)
    if document.get("params") is None:
        # Validate the defaults too: a loss may require a parameter (ctc's target_lengths).
        document = {**document, "params": {}}
    try:
        request = model.model_validate(document)
    except ValidationError as error:
        raise structure_error(error, model) from None
    budget = ElementBudget(max_elements)
    return ParsedRequest(
        inputs=read_inputs(request, budget, check_booleans),
        params=request.params,  # type: ignore[attr-defined]
        reduction=request.reduction,
        include=frozenset(request.include),
    )


def render(result: LossResult, include: frozenset[str]) -> dict[str, Any]:
    """The response body; arrays stay NumPy for orjson."""
    body: dict[str, Any] = {"loss": result.loss, "reduction": result.reduction}
    if "cost" in include:
        body["cost"] = result.cost
    if "per_sample" in include:
        body["per_sample"] = result.per_sample
    if "gradient" in include and result.gradient is not None:
        body["gradient"] = result.gradient
    body["sum"] = result.sum
    body["weight_sum"] = result.weight_sum
    body["count"] = result.count
    body["extras"] = result.extras
    return body
