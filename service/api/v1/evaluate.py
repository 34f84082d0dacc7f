"""``POST /v1/evaluate``: several losses on one payload, a weighted total, regularization and
metrics, in one call.

Each term is validated and computed by the same engine as ``POST /v1/losses/{name}``, against
its own contract; the totals are ``cost = sum_k weight_k cost_k + regularization``,
``gradient = sum_k weight_k gradient_k`` and ``per_sample = sum_k weight_k per_sample_k``.
Regularization: ``l1 * sum|theta| + l2 * sum theta^2`` over the given parameters, with its
gradient per named parameter (the derivative of |theta| is 0 at 0).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from service import scores as metric_module
from service.api import codec
from service.api.codec import to_array
from service.api.v1.losses import (
    ALL_OUTPUTS,
    MAX_INCLUDE,
    ElementBudget,
    NumberArray,
    Output,
    read_inputs,
    structure_error,
)
from service.compute import work
from service.compute.deadline import checkpoint
from service.compute.engine import LossResult, compute
from service.losses.registry import REGISTRY, LossSpec, canonical_name
from service.validation.contracts import Inputs
from service.validation.errors import InvalidInput, NonFiniteResult, StructureError
from service.validation.finite import require_finite

MAX_TERMS = 16
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
    reduction: Literal["mean", "sum"] = "mean"
    include: list[Output] = Field(
        default_factory=lambda: list(ALL_OUTPUTS),
        max_length=MAX_INCLUDE,
        description="Which of cost, per_sample, gradient to return.",
    )


@dataclass(frozen=True)
class PreparedTerm:
    index: int
    label: str
    spec: LossSpec
    weight: float
    params: Any


@dataclass(frozen=True)
class PreparedEvaluation:
    """A validated evaluation: its terms, inputs, metrics and regularization, ready to run."""

    terms: list[PreparedTerm]
    inputs: Inputs
    metrics: list[Any]
    regularization: Regularization | None
    parameters: np.ndarray | dict[str, np.ndarray] | None
    reduction: Any
    include: frozenset[str]


#: Arrays read as JsonArray: the tensors, and regularization's parameters (one array, or an
#: object of named arrays).
ARRAYS = {
    **codec.TENSOR_ARRAYS,
    "regularization": frozenset({("parameters",), ("parameters", "*")}),
}


def prepare(body: bytes | bytearray, max_elements: int) -> work.Plan:
    """Read and validate everything, and estimate the work (every term, the metrics, the
    outputs)."""
    document = codec.read_request(body, EvaluateRequest, ARRAYS)
    try:
        request = EvaluateRequest.model_validate(document)
    except ValidationError as error:
        raise structure_error(error, EvaluateRequest) from None
    _require_unique_labels(request.terms)
    terms = [_prepare(index, term) for index, term in enumerate(request.terms)]
    metric_requests = metric_module.parse_metrics(request.metrics or [])
    budget = ElementBudget(max_elements)
    del document
    inputs = read_inputs(request, budget, codec.may_hold_booleans(body))
    parameters = _parameters(request.regularization, budget)
    prepared = PreparedEvaluation(
        terms,
        inputs,
        metric_requests,
        request.regularization,
        parameters,
        request.reduction,
        frozenset(request.include),
    )
    return work.Plan(_estimate(prepared), partial(run_encoded, prepared))


def _estimate(prepared: PreparedEvaluation) -> work.Estimate:
    inputs = prepared.inputs
    entries = inputs.predictions.size
    seconds = sum(work.loss_seconds(term.spec, inputs, term.params) for term in prepared.terms)
    seconds += work.METRIC_SECONDS * entries * len(prepared.metrics)
    outputs = inputs.predictions.shape[0] * (1 + len(prepared.terms))
    if "gradient" in prepared.include:
        outputs += entries
    seconds += work.output_seconds(outputs)
    names = ", ".join(term.spec.name for term in prepared.terms)
    return work.Estimate(seconds, entries, names)


def run_encoded(prepared: PreparedEvaluation) -> bytes:
    return codec.encode(run(prepared))


def run(prepared: PreparedEvaluation) -> dict[str, Any]:
    """Compute every term, regularization and metrics; the response body."""
    inputs, include = prepared.inputs, prepared.include
    results = []
    for term in prepared.terms:
        checkpoint()
        results.append((term, _run(term, inputs, prepared.reduction, include)))
    regularization = _regularization(prepared.regularization, prepared.parameters)
    body: dict[str, Any] = {"reduction": prepared.reduction}
    if "cost" in include:
        body["cost"] = (
            sum(term.weight * result.cost for term, result in results) + (regularization["value"])
        )
    if "per_sample" in include:
        body["per_sample"] = sum(term.weight * result.per_sample for term, result in results)
    if "gradient" in include:
        body["gradient"] = sum(term.weight * result.gradient for term, result in results)
    body["count"] = inputs.predictions.shape[0]
    body["terms"] = {term.label: _term_body(term, result, include) for term, result in results}
    body["regularization"] = regularization
    checkpoint()
    body["metrics"] = metric_module.compute_metrics(prepared.metrics, inputs)
    _require_finite_totals(body)
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


def _prepare(index: int, term: Term) -> PreparedTerm:
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
        raise _within_term(structure_error(error, spec.params), index, "params") from None
    except StructureError as error:
        raise _within_term(error, index, "params") from None
    return PreparedTerm(index, term.label or term.loss, spec, term.weight, params)


def _within_term(error: InvalidInput, index: int, field: str | None) -> InvalidInput:
    """The same error, located inside ``terms[index]`` (params) or naming the term."""
    errors = []
    for item in error.errors or []:
        loc = item["loc"]
        if field is not None:
            loc = ["body", "terms", index, field, *loc[1:]]
        errors.append({**item, "loc": loc, "msg": f"terms[{index}]: {item['msg']}"})
    first, *more = errors
    return type(error)(first["loc"], first["msg"], more, error.unlisted)


def _run(term: PreparedTerm, inputs: Inputs, reduction: Any, include: frozenset[str]) -> LossResult:
    try:
        return compute(term.spec, inputs, term.params, reduction, "gradient" in include)
    except InvalidInput as error:
        raise _within_term(error, term.index, None) from None


def _term_body(term: PreparedTerm, result: LossResult, include: frozenset[str]) -> dict:
    body: dict[str, Any] = {"loss": result.loss, "weight": term.weight, "cost": result.cost}
    if "per_sample" in include:
        body["per_sample"] = result.per_sample
    body.update(sum=result.sum, weight_sum=result.weight_sum, extras=result.extras)
    return body


def _parameters(
    regularization: Regularization | None, budget: ElementBudget
) -> np.ndarray | dict[str, np.ndarray] | None:
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


def _regularization(
    regularization: Regularization | None, parameters: np.ndarray | dict | None
) -> dict[str, Any]:
    """``l1 * sum|theta| + l2 * sum theta^2`` and its gradient (d|theta|/dtheta = 0 at 0)."""
    if regularization is None:
        return {"value": 0.0}
    l1, l2 = regularization.l1, regularization.l2

    def value(theta: np.ndarray) -> float:
        return float(l1 * np.abs(theta).sum() + l2 * np.square(theta).sum())

    def gradient(theta: np.ndarray) -> np.ndarray:
        return l1 * np.sign(theta) + 2.0 * l2 * theta

    body: dict[str, Any] = {"l1": l1, "l2": l2}
    if parameters is None:
        body["value"] = 0.0
    elif isinstance(parameters, dict):
        body["value"] = sum(value(theta) for theta in parameters.values())
        body["gradient"] = {name: gradient(theta) for name, theta in parameters.items()}
    else:
        body["value"] = value(parameters)
        body["gradient"] = gradient(parameters)
    return body


def _require_finite_totals(body: dict[str, Any]) -> None:
    """Each term is finite; a weighted total can still overflow."""
    for key in ("cost", "per_sample", "gradient"):
        if key in body and not np.all(np.isfinite(body[key])):
            raise NonFiniteResult(
                ["body", "terms"],
                f"the weighted total {key} overflows float64; scale the term weights down",
            )
    regularization = body["regularization"]
    values = [regularization["value"]]
    gradients = regularization.get("gradient")
    if isinstance(gradients, dict):
        values += list(gradients.values())
    elif gradients is not None:
        values.append(gradients)
    if not all(np.all(np.isfinite(v)) for v in values):
        raise NonFiniteResult(
            ["body", "regularization"],
            "the regularization overflows float64; scale l1, l2 or the parameters down",
        )
