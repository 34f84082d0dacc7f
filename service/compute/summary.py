"""An evaluation's mergeable summary (``"state": true`` on ``POST /v1/evaluate``, and
``POST /v1/evaluate/merge``): what its answer is computed from, for the whole batch and for each
slice, which merges exactly with the summaries of other batches evaluated the same way.

- each term's ``sum``, ``weight_sum`` and ``count`` (a loss's cost is ``sum / weight_sum`` under
  ``mean``, ``sum`` under ``sum``: both merge by addition);
- each metric's state (:mod:`service.scores.state`);
- with groups, the same per slice (a slice's term sums come from the per-sample sums the
  reduction already has: ``sample_weights @ per_sample`` over its samples; no second kernel);
- with ``top_k``, the k samples of largest total per-sample loss, with global indices.

The ``definition`` (terms with their loss, weight, params and label; metrics with their
params; the reduction; whether there are slices; k) says what was computed: summaries of
different definitions do not merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from service import scores
from service.compute import work
from service.compute.regularization import Parameters, Penalty, regularize, require_finite
from service.reduction import Reduction
from service.scores.state import State, merge
from service.validation.errors import InvalidInput

FORMAT = "loss-service.evaluation-state"
VERSION = 1


class DifferentDefinitions(InvalidInput):
    slug, title = "different-definitions", "Different Definitions"


@dataclass(frozen=True)
class TermSums:
    sum: float
    weight_sum: float
    count: int

    def cost(self, reduction: Reduction) -> float:
        if reduction == "sum":
            return self.sum
        return self.sum / self.weight_sum if self.weight_sum > 0 else 0.0

    def plus(self, other: TermSums) -> TermSums:
        return TermSums(
            self.sum + other.sum, self.weight_sum + other.weight_sum, self.count + other.count
        )


@dataclass(frozen=True)
class Slice:
    """A slice's (or the whole batch's) sums and states."""

    count: int
    weight_sum: float  # the samples' weights (sample_weight; 1 each without it)
    terms: list[TermSums]
    metrics: list[State]

    def plus(self, other: Slice) -> Slice:
        return Slice(
            self.count + other.count,
            self.weight_sum + other.weight_sum,
            [mine.plus(theirs) for mine, theirs in zip(self.terms, other.terms, strict=True)],
            [merge(mine, theirs) for mine, theirs in zip(self.metrics, other.metrics, strict=True)],
        )


Worst = tuple[int, float]  # (global index, total per-sample loss)


@dataclass(frozen=True)
class Summary:
    definition: dict[str, Any]
    whole: Slice
    groups: dict[str, Slice] | None = None
    top_k: list[Worst] | None = None

    @property
    def reduction(self) -> Reduction:
        return self.definition["reduction"]


def group_sums(
    per_sample: np.ndarray, sample_weights: np.ndarray, groups: np.ndarray, count: int
) -> list[TermSums]:
    """One term's sums per slice, from its per-sample means and weights."""
    sums = np.bincount(groups, per_sample * sample_weights, minlength=count)
    weights = np.bincount(groups, sample_weights, minlength=count)
    sizes = np.bincount(groups, minlength=count)
    return [
        TermSums(float(s), float(w), int(n)) for s, w, n in zip(sums, weights, sizes, strict=True)
    ]


def worst(total: np.ndarray, k: int, offset: int) -> list[Worst]:
    """The k largest totals, largest first (ties: the smaller index first), global indices."""
    k = min(k, total.size)
    if k < total.size:
        candidates = np.argpartition(-total, k - 1)[:k]
        # Ties at the cut: every sample equal to the k-th value competes on its index.
        cut = total[candidates].min()
        candidates = np.union1d(candidates, np.flatnonzero(total == cut))
    else:
        candidates = np.arange(total.size)
    order = np.lexsort((candidates, -total[candidates]))[:k]
    return [(int(candidates[i]) + offset, float(total[candidates[i]])) for i in order]


def merge_worst(first: list[Worst], second: list[Worst], k: int) -> list[Worst]:
    return sorted([*first, *second], key=lambda item: (-item[1], item[0]))[:k]


def first_difference(mine: Any, theirs: Any, path: str = "definition") -> str | None:
    """Where two definitions first differ (a dotted path and both values), or None."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in [*mine, *(key for key in theirs if key not in mine)]:
            found = first_difference(mine.get(key), theirs.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(mine, list) and isinstance(theirs, list):
        if len(mine) != len(theirs):
            return f"{path} has {len(mine)} entries in one state and {len(theirs)} in another"
        for index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    if mine != theirs or type(mine) is not type(theirs):
        return f"{path} is {mine!r} in one state and {theirs!r} in another"
    return None


def merge_summaries(summaries: Sequence[Summary]) -> Summary:
    """The summary of all their batches together; a 422 naming the first difference when
    their definitions differ."""
    first, *rest = summaries
    merged = first
    for index, other in enumerate(rest, start=1):
        difference = first_difference(first.definition, other.definition)
        if difference is not None:
            raise DifferentDefinitions(
                ["body", "states", index, "definition"],
                f"states[0] and states[{index}] were computed under different definitions: "
                f"{difference}; only states of the same terms, metrics, reduction, groups and "
                "top_k merge",
            )
        merged = _merge_two(merged, other)
    return merged


def _merge_two(first: Summary, second: Summary) -> Summary:
    groups = None
    if first.groups is not None and second.groups is not None:
        groups = dict(first.groups)
        for label, part in second.groups.items():
            groups[label] = groups[label].plus(part) if label in groups else part
        groups = dict(sorted(groups.items(), key=lambda item: _label_order(item[0])))
    top = first.top_k
    if first.top_k is not None and second.top_k is not None:
        top = merge_worst(first.top_k, second.top_k, int(first.definition["top_k"]))
    return replace(first, whole=first.whole.plus(second.whole), groups=groups, top_k=top)


def _label_order(label: str) -> tuple[int, int | str]:
    """Integer labels in numeric order, before string labels in code-point order."""
    try:
        return (0, int(label))
    except ValueError:
        return (1, label)


@dataclass(frozen=True)
class Values:
    """A slice's answer: costs, and metric values with the reasons of those undefined."""

    cost: float
    terms: list[float]
    metrics: dict[str, float | None]
    undefined: dict[str, str]


def values_of(
    part: Slice,
    weights: Sequence[float],
    reduction: Reduction,
    requests: list[scores.MetricRequest],
    strict: bool = False,
) -> Values:
    costs = [term.cost(reduction) for term in part.terms]
    cost = float(sum(weight * value for weight, value in zip(weights, costs, strict=True)))
    metrics, undefined = scores.metric_values(requests, part.metrics, strict=strict)
    return Values(cost, costs, metrics, undefined)


@dataclass(frozen=True)
class Merge:
    """``POST /v1/evaluate/merge`` as the pipeline's computation: the summaries merged, and
    the regularization (added once) when sent."""

    summaries: list[Summary]
    elements: int  # numbers the states hold: the work is linear in them
    penalty: Penalty | None
    parameters: Parameters

    def estimate(self) -> work.Estimate:
        seconds = work.METRIC_SECONDS * self.elements * 4
        return work.Estimate(seconds, self.elements, "merge")

    def execute(
        self, threads: int, timings: list[tuple[str, float]] | None = None
    ) -> tuple[Summary, dict[str, Any]]:
        merged = merge_summaries(self.summaries)
        regularization = regularize(self.penalty, self.parameters)
        require_finite(regularization)
        return merged, regularization
