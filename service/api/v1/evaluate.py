"""The ``/v1`` adapter of ``POST /v1/evaluate``: a JSON body to the pipeline's
:class:`~service.compute.evaluation.Evaluation`, and its result to the JSON answer.

Each term names a loss and its params, validated as ``POST /v1/losses/{name}`` validates them;
``regularization`` and ``metrics`` are optional; labels key the terms in the answer.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, ValidationError

from service import scores
from service.api import codec
from service.api.codec import to_array
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
from service.api.v1.summary import state_json, summary_answer
from service.compute.evaluation import Evaluation, EvaluationResult, within_term
from service.compute.evaluation import Term as EvaluationTerm
from service.compute.pipeline import Call
from service.compute.regularization import Penalty
from service.losses.registry import REGISTRY, canonical_name
from service.reduction import Reduction
from service.validation.errors import ServiceError, StructureError
from service.validation.finite import require_finite
from service.validation.structure import structure_error

MAX_TERMS = 16
MAX_TOP_K = 10_000
GroupLabel = Annotated[str, Field(min_length=1, max_length=100)]
TopK = Annotated[int, Strict(), Field(ge=1, le=MAX_TOP_K)]
#: Longest ``metrics`` list (each metric at most once; there are 8).
MAX_METRICS = 32
Weight = Annotated[float, Strict(), Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]


class Term(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loss: str = Field(description="A loss name or alias (GET /v1/losses), custom included.")
    weight: Weight = Field(1.0, description="The term's factor in the total cost and gradient.")
    params: dict[str, Any] | None = Field(None, description="The loss's own params.")
    label: str | None = Field(
        None, min_length=1, max_length=100, description="Key in the response; default: the name."
    )


class Regularization(BaseModel):
    model_config = ConfigDict(extra="forbid")

    l1: NonNegative = Field(0.0, description="Weight of sum |theta|.")
    l2: NonNegative = Field(0.0, description="Weight of sum theta^2.")
    parameters: NumberArray | dict[str, NumberArray] | None = Field(
        None,
        description="A flat array, or an object of named arrays of any shape (a model's layers).",
    )


class EvaluateRequest(BaseModel):
    """Request body of POST /v1/evaluate."""

    model_config = ConfigDict(extra="forbid")

    predictions: NumberArray = Field(description="Predictions (or logits), shape (N, ...).")
    targets: NumberArray = Field(description="Targets, as each term's loss requires.")
    sample_weight: NumberArray | None = Field(None, description="(N,), >= 0. Default all 1.")
    mask: NumberArray | None = Field(None, description="Element mask (terms that accept it).")
    terms: list[Term] = Field(min_length=1, max_length=MAX_TERMS, description="1 to 16 losses.")
    regularization: Regularization | None = None
    metrics: list[Any] | None = Field(
        None,
        max_length=MAX_METRICS,
        description="Metric names or {name, params}: accuracy, precision, recall, f1, roc_auc, "
        "r2, rmse, mae.",
    )
    reduction: Reduction = "mean"
    include: list[Output] = Field(
        default_factory=lambda: list(ALL_OUTPUTS),
        max_length=MAX_INCLUDE,
        description="Which of cost, per_sample, gradient to return.",
    )
    state: StrictBool = Field(
        False,
        description="Add ``state``: the mergeable summary that POST /v1/evaluate/merge takes; "
        "metrics without a value on this batch are then null with the reason under "
        "``undefined`` instead of a 422.",
    )
    groups: list[StrictInt] | list[GroupLabel] | None = Field(
        None,
        description="One slice label per sample (N,), integers or strings: adds ``groups`` with "
        "each slice's numbers (at most LOSS_SERVICE_MAX_GROUPS labels).",
    )
    top_k: TopK | None = Field(
        None, description="Add ``top_k``: the k samples of largest total per-sample loss."
    )
    offset: Annotated[int, Strict(), Field(ge=0)] = Field(
        0, description="Global index of the first sample (shards report global indices)."
    )


#: Arrays read as JsonArray: the tensors, and regularization's parameters (one array, or an
#: object of named arrays).
ARRAYS = {
    **codec.TENSOR_ARRAYS,
    "regularization": frozenset({("parameters",), ("parameters", "*")}),
}


async def handle(request: Request) -> Reply:
    """``POST /v1/evaluate``: several losses, regularization and metrics."""
    try:
        codec.check_json_content_type(request.header(b"content-type"))
    except ServiceError as error:
        return problem_reply(error)
    return await score(request, partial(decode, request.services.settings.max_groups))


def decode(
    max_groups: int, body: bytes | bytearray, max_elements: int, _reserve: Callable[[int], None]
) -> Call:
    """Read and validate everything (the pipeline's ``decode``, ``max_groups`` bound)."""
    document = codec.read_request(body, EvaluateRequest, ARRAYS)
    try:
        request = EvaluateRequest.model_validate(document)
    except ValidationError as error:
        raise structure_error(error, EvaluateRequest) from None
    _require_unique_labels(request.terms)
    terms = [_prepare(index, term) for index, term in enumerate(request.terms)]
    metric_requests = scores.parse_metrics(request.metrics or [])
    budget = ElementBudget(max_elements)
    del document
    inputs = read_inputs(request, budget, codec.may_hold_booleans(body))
    parameters = parameters_of(request.regularization, budget)
    given = request.regularization
    include = frozenset(request.include)
    groups, labels = _groups(request.groups, inputs.predictions.shape[0], max_groups, budget)
    evaluation = Evaluation(
        terms,
        inputs,
        metric_requests,
        None if given is None else Penalty(given.l1, given.l2),
        parameters,
        request.reduction,
        cost="cost" in include,
        per_sample="per_sample" in include,
        gradient="gradient" in include,
        state=request.state,
        groups=groups,
        group_labels=labels,
        top_k=request.top_k,
        offset=request.offset,
    )
    return Call(evaluation, partial(answer, metric_requests))


def answer(requests: list[scores.MetricRequest], result: EvaluationResult) -> Reply:
    return Reply(200, codec.encode(render(result, requests)))


def _groups(
    given: list[int] | list[str] | None, count: int, max_groups: int, budget: ElementBudget
) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Each sample's slice index, and the slices' labels (integers in numeric order, strings
    in code-point order); 422 when the labels are not one per sample or too many."""
    if given is None:
        return None, ()
    if len(given) != count:
        raise StructureError(
            ["body", "groups"],
            f"groups has {len(given)} labels but predictions has {count} samples; send one "
            "label per sample",
        )
    budget.take(given, lambda value: np.empty(len(value)))
    values = np.array(given) if given else np.array([], dtype=np.int64)
    distinct, index = np.unique(values, return_inverse=True)
    if distinct.size > max_groups:
        raise StructureError(
            ["body", "groups"],
            f"groups has {distinct.size} distinct labels; the limit is {max_groups} "
            "(LOSS_SERVICE_MAX_GROUPS)",
        )
    return index.astype(np.int64), tuple(str(label) for label in distinct.tolist())


def render(result: EvaluationResult, requests: list[scores.MetricRequest]) -> dict[str, Any]:
    """The response body; arrays stay NumPy for orjson."""
    body: dict[str, Any] = {"reduction": result.reduction}
    if result.cost is not None:
        body["cost"] = result.cost
    if result.per_sample is not None:
        body["per_sample"] = result.per_sample
    if result.gradient is not None:
        body["gradient"] = result.gradient
    body["count"] = result.count
    terms = {}
    for term, loss in result.terms:
        entry: dict[str, Any] = {"loss": loss.loss, "weight": term.weight, "cost": loss.cost}
        if result.per_sample is not None:
            entry["per_sample"] = loss.per_sample
        entry.update(sum=loss.sum, weight_sum=loss.weight_sum, count=loss.count, extras=loss.extras)
        terms[term.label] = entry
    body["terms"] = terms
    body["regularization"] = result.regularization
    body["metrics"] = result.metrics
    if result.undefined:
        body["undefined"] = result.undefined
    if result.summary is not None:
        body.update(summary_answer(result.summary, requests))
        if result.with_state:
            body["state"] = state_json(result.summary)
    return body


def _require_unique_labels(terms: list[Term]) -> None:
    seen: dict[str, int] = {}
    for index, term in enumerate(terms):
        label = term.label or term.loss
        if label in seen:
            raise StructureError(
                ["body", "terms", index, "label"],
                f"terms[{index}] has the label {label!r} of terms[{seen[label]}]; labels key the "
                "response and must be unique: set 'label' on one of them",
            )
        seen[label] = index


def _prepare(index: int, term: Term) -> EvaluationTerm:
    name = canonical_name(term.loss)
    if name is None:
        known = sorted(REGISTRY)
        close = difflib.get_close_matches(term.loss, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise StructureError(
            ["body", "terms", index, "loss"],
            f"terms[{index}].loss: unknown loss {term.loss!r}{hint} GET /v1/losses lists them",
        )
    spec = REGISTRY[name]
    try:
        codec.refuse_unknown(term.params, spec.params.model_fields)
        params = spec.params.model_validate(term.params or {})
    except ValidationError as error:
        raise within_term(structure_error(error, spec.params), index, "params") from None
    except StructureError as error:
        raise within_term(error, index, "params") from None
    return EvaluationTerm(index, term.label or term.loss, spec, term.weight, params)


def parameters_of(
    regularization: Regularization | None, budget: ElementBudget
) -> np.ndarray | dict[str, np.ndarray] | None:
    """The regularization's parameters as arrays (counted in the element budget)."""
    if regularization is None or regularization.parameters is None:
        return None
    given = regularization.parameters
    if isinstance(given, dict):
        return {
            name: budget.take(
                value,
                partial(
                    _parameter_array,
                    field=f"regularization.parameters.{name}",
                ),
            )
            for name, value in given.items()
        }
    return budget.take(
        given,
        partial(_parameter_array, field="regularization.parameters"),
    )


def _parameter_array(value: Any, field: str) -> np.ndarray:
    """An array of any shape, or a single number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        array = np.asarray(float(value))
        require_finite(array.reshape(1), field)
        return array
    return to_array(value, field)
