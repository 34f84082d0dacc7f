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
from service.compute.summary import Slice, Summary, TermSums, group_sums, worst
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
    #: ``"state": true``: the answer carries the mergeable summary (:mod:`.summary`).
    state: bool = False
    #: Each sample's slice (an index into ``group_labels``), when ``groups`` is sent.
    groups: np.ndarray | None = None
    group_labels: tuple[str, ...] = ()
    top_k: int | None = None
    offset: int = 0

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
    #: Metrics without a value (``None`` in ``metrics``) and why: only with ``state``.
    undefined: dict[str, str] = field(default_factory=dict)
    summary: Summary | None = None
    with_state: bool = False  # the answer carries the summary as ``state``


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
    groups, labels = evaluation.groups, evaluation.group_labels
    states = scores.metric_states(evaluation.metrics, inputs, groups, len(labels))
    metrics, undefined = scores.metric_values(
        evaluation.metrics, states.whole, strict=not evaluation.state
    )
    for name, total in (("cost", cost), ("per_sample", per_sample), ("gradient", gradient)):
        if total is not None and not np.all(np.isfinite(total)):
            raise NonFiniteResult(
                ["body", "terms"],
                f"the weighted total {name} overflows float64; scale the term weights down",
            )
    require_finite(regularization)
    summary = None
    if evaluation.state or groups is not None or evaluation.top_k is not None:
        summary = summarize(evaluation, results, states, cast(np.ndarray | None, per_sample))
    return EvaluationResult(
        evaluation.reduction,
        inputs.predictions.shape[0],
        cost,
        per_sample,  # type: ignore[arg-type]
        gradient,  # type: ignore[arg-type]
        results,
        regularization,
        metrics,
        undefined,
        summary,
        evaluation.state,
    )


def definition_of(evaluation: Evaluation) -> dict[str, Any]:
    """What an evaluation computes, as summaries record it (params with their defaults)."""
    return {
        "reduction": evaluation.reduction,
        "terms": [
            {
                "label": term.label,
                "loss": term.spec.name,
                "weight": term.weight,
                "params": term.params.model_dump(mode="json"),
            }
            for term in evaluation.terms
        ],
        "metrics": [
            {"name": request.name, "params": request.params.model_dump(mode="json")}
            for request in evaluation.metrics
        ],
        "groups": evaluation.groups is not None,
        "top_k": evaluation.top_k,
    }


def summarize(
    evaluation: Evaluation,
    results: list[tuple[Term, LossResult]],
    states: scores.MetricStates,
    per_sample: np.ndarray | None = None,
) -> Summary:
    """The evaluation's mergeable summary: sums and states, per slice too, and the worst."""
    inputs = evaluation.inputs
    n = inputs.predictions.shape[0]
    sample_weight = inputs.sample_weight
    whole = Slice(
        n,
        float(sample_weight.sum()) if sample_weight is not None else float(n),
        [TermSums(loss.sum, loss.weight_sum, loss.count) for _, loss in results],
        states.whole,
    )
    groups = None
    if evaluation.groups is not None and states.groups is not None:
        index, count = evaluation.groups, len(evaluation.group_labels)
        per_term = [
            group_sums(loss.per_sample, cast(np.ndarray, loss.sample_weights), index, count)
            for _, loss in results
        ]
        weights = np.ones(n) if sample_weight is None else sample_weight
        sample_sums = np.bincount(index, weights, minlength=count)
        sizes = np.bincount(index, minlength=count)
        groups = {
            label: Slice(
                int(sizes[g]),
                float(sample_sums[g]),
                [sums[g] for sums in per_term],
                states.groups[g],
            )
            for g, label in enumerate(evaluation.group_labels)
        }
    top = None
    if evaluation.top_k is not None:
        # The weighted total per sample: the answer's, when it has one already.
        total = per_sample
        if total is None:
            total = cast(np.ndarray, sum(term.weight * loss.per_sample for term, loss in results))
        top = worst(np.asarray(total, dtype=np.float64), evaluation.top_k, evaluation.offset)
    return Summary(definition_of(evaluation), whole, groups, top)


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
