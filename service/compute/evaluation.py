"""Several losses on one batch (``POST /v1/evaluate``): the pipeline's request and its result.

Each term is computed by :func:`service.compute.engine.compute` against its own contract; the
totals are ``cost = sum_k weight_k cost_k + regularization``, ``gradient = sum_k weight_k
gradient_k`` and ``per_sample = sum_k weight_k per_sample_k``; then the metrics
(:mod:`service.scores`) on the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from service import reduction as reducing
from service import scores
from service.compute import work
from service.compute.deadline import checkpoint
from service.compute.engine import LossResult, compute
from service.compute.regularization import Parameters, Penalty, regularize, require_finite
from service.losses.registry import LossSpec
from service.validation.contracts import Inputs
from service.validation.errors import InvalidInput, NonFiniteResult


@dataclass(frozen=True, slots=True)
class Term:
    index: int
    label: str
    spec: LossSpec
    weight: float
    params: Any


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A validated evaluation: its terms, inputs, metrics and regularization, ready to run."""

    terms: list[Term]
    inputs: Inputs
    metrics: list[Any]
    penalty: Penalty | None
    parameters: Parameters
    reduction: reducing.Reduction
    cost: bool = True
    per_sample: bool = True
    gradient: bool = True

    def estimate(self) -> work.Estimate:
        inputs = self.inputs
        entries = inputs.predictions.size
        seconds = sum(work.loss_seconds(term.spec, inputs, term.params) for term in self.terms)
        seconds += work.METRIC_SECONDS * entries * len(self.metrics)
        outputs = inputs.predictions.shape[0] * (1 + len(self.terms))
        if self.gradient:
            outputs += entries
        seconds += work.output_seconds(outputs)
        names = ", ".join(term.spec.name for term in self.terms)
        return work.Estimate(seconds, entries, names)

    def execute(
        self, threads: int, timings: list[tuple[str, float]] | None = None
    ) -> EvaluationResult:
        return evaluate(self, threads, timings)


@dataclass(frozen=True)
class EvaluationResult:
    reduction: reducing.Reduction
    count: int
    cost: float | None
    per_sample: np.ndarray | None
    gradient: np.ndarray | None
    terms: list[tuple[Term, LossResult]]
    regularization: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


def evaluate(
    evaluation: Evaluation, threads: int = 1, timings: list[tuple[str, float]] | None = None
) -> EvaluationResult:
    """Every term, the regularization and the metrics; a 422 when a total overflows."""
    inputs = evaluation.inputs
    results = []
    for term in evaluation.terms:
        checkpoint()
        try:
            result = compute(
                term.spec,
                inputs,
                term.params,
                evaluation.reduction,
                evaluation.gradient,
                threads=threads,
                timings=timings,
            )
        except InvalidInput as error:
            raise within_term(error, term.index, None) from None
        results.append((term, result))
    regularization = regularize(evaluation.penalty, evaluation.parameters)
    cost = per_sample = gradient = None
    if evaluation.cost:
        cost = sum(term.weight * result.cost for term, result in results) + regularization["value"]
    if evaluation.per_sample:
        per_sample = sum(term.weight * result.per_sample for term, result in results)
    if evaluation.gradient:  # (every term computed its gradient)
        gradient = sum(term.weight * cast(np.ndarray, result.gradient) for term, result in results)
    checkpoint()
    metrics = scores.compute_metrics(evaluation.metrics, inputs)
    for name, total in (("cost", cost), ("per_sample", per_sample), ("gradient", gradient)):
        if total is not None and not np.all(np.isfinite(total)):
            raise NonFiniteResult(
                ["body", "terms"],
                f"the weighted total {name} overflows float64; scale the term weights down",
            )
    require_finite(regularization)
    return EvaluationResult(
        evaluation.reduction,
        inputs.predictions.shape[0],
        cost,
        per_sample,  # type: ignore[arg-type]
        gradient,  # type: ignore[arg-type]
        results,
        regularization,
        metrics,
    )


def within_term(error: InvalidInput, index: int, field: str | None) -> InvalidInput:
    """The same error, located inside ``terms[index]`` (``field``: params) or naming the term."""
    errors = []
    for item in error.errors or []:
        loc = item["loc"]
        if field is not None:
            loc = ["body", "terms", index, field, *loc[1:]]
        errors.append({**item, "loc": loc, "msg": f"terms[{index}]: {item['msg']}"})
    first, *more = errors
    return type(error)(first["loc"], first["msg"], more, error.unlisted)
