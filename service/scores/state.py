r"""Metric states: the sufficient statistics a metric's value is computed from, which merge
exactly (up to float64 rounding) however a data set is split into shards or slices.

- :class:`Labels` (accuracy, precision, recall, f1): the weighted confusion matrix, as the
  (true, predicted) label pairs that occur with their weight, the labels present (binary
  readings: labels 0 and 1) and the number of entries kept. Labels present with weight 0 stay,
  as scikit-learn's ``labels`` default keeps them.
- :class:`Ranks` (roc_auc): every distinct score with the positive and the negative weight at
  it, and how many entries of each class there are. Exact, ties included; its size is the
  number of distinct scores (up to the number of entries).
- :class:`Moments` (r2, rmse, mae): the weight :math:`W`, the weighted mean of the targets and
  :math:`M_2 = \sum w (y - \bar y)^2`, merged with Chan et al.'s pairwise update (never from
  raw sums of squares, which cancel catastrophically on targets far from 0), the sums of
  :math:`w (y - \hat y)^2` and :math:`w |y - \hat y|`, and the extreme targets with positive
  weight (whether they are all equal).

A state's value may not exist (no entries kept, weights summing to 0, one class only for
roc_auc, constant targets for r2): that is :class:`Undefined`, a 422 for a whole request and a
``null`` with its reason for a slice, a shard or a merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.validation.errors import DomainError, Loc, ShapeError

Score = Literal["precision", "recall", "f1"]
Average = Literal["macro", "micro", "weighted"]


class Undefined(DomainError):
    """The metric has no value on these entries (its reason is the message)."""


class DifferentReadings(ShapeError):
    """States of one metric that read the payload differently (binary and multiclass)."""


@dataclass(frozen=True)
class Labels:
    """The confusion matrix, sparse: the weight of every (true, predicted) pair of labels that
    occurs (its size never exceeds the entries it summarizes, however many labels)."""

    labels: np.ndarray  # int64, ascending: the labels present (binary readings: 0 and 1)
    truth: np.ndarray  # int64: the true label of each occurring pair, pairs ascending
    guess: np.ndarray  # int64: the predicted label
    weight: np.ndarray  # float64: the pair's total weight
    count: int
    multiclass: bool

    def totals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per label: the weight of true positives, of predictions, of targets (support)."""
        size = self.labels.size
        true_at = np.searchsorted(self.labels, self.truth)
        guess_at = np.searchsorted(self.labels, self.guess)
        hit = self.truth == self.guess
        true_positives = np.bincount(true_at[hit], self.weight[hit], minlength=size)
        predicted = np.bincount(guess_at, self.weight, minlength=size)
        support = np.bincount(true_at, self.weight, minlength=size)
        return true_positives, predicted, support


@dataclass(frozen=True)
class Ranks:
    scores: np.ndarray  # distinct, ascending
    positive: np.ndarray  # weight of the entries with target 1 at each score
    negative: np.ndarray
    positives: int  # entries with target 1, whatever their weight
    negatives: int


@dataclass(frozen=True)
class Moments:
    count: int
    weight: float
    mean: float
    m2: float
    sse: float
    sae: float
    low: float  # smallest and largest target with positive weight (inf, -inf: none)
    high: float


State = Labels | Ranks | Moments


# ---- from entries ------------------------------------------------------------------------


def labels_of(truth: np.ndarray, guess: np.ndarray, weight: np.ndarray, multiclass: bool) -> Labels:
    """The weighted confusion pairs of integer labels (binary readings: labels 0 and 1)."""
    labels = (np.union1d(truth, guess) if multiclass else np.array([0, 1])).astype(np.int64)
    pairs = _pairs(labels, truth.astype(np.int64), guess.astype(np.int64), weight)
    return Labels(labels, *pairs, int(truth.size), multiclass)


def _pairs(
    labels: np.ndarray, truth: np.ndarray, guess: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each distinct (truth, guess) pair, ascending, with its total weight (``labels``: every
    label either names, ascending)."""
    size = labels.size
    key = np.searchsorted(labels, truth) * size + np.searchsorted(labels, guess)
    if size * size <= 4 * key.size + 64:  # few cells: count them all
        occurs = np.bincount(key, minlength=size * size) > 0
        total = np.bincount(key, weight, minlength=size * size)
        cells = np.flatnonzero(occurs)
        total = total[cells]
    else:
        cells, at = np.unique(key, return_inverse=True)
        total = np.bincount(at.reshape(-1), weight, minlength=cells.size)
    return labels[cells // size], labels[cells % size], total


def ranks_of(truth: np.ndarray, score: np.ndarray, weight: np.ndarray) -> Ranks:
    scores, at = np.unique(score, return_inverse=True)
    positive = np.bincount(at, weight * truth, minlength=scores.size)
    negative = np.bincount(at, weight * (1.0 - truth), minlength=scores.size)
    positives = int(np.count_nonzero(truth))
    return Ranks(scores, positive, negative, positives, int(truth.size) - positives)


def moments_of(truth: np.ndarray, value: np.ndarray, weight: np.ndarray) -> Moments:
    total = float(weight.sum())
    mean = float(np.dot(truth, weight) / total) if total > 0 else 0.0
    residual = truth - value
    weighted = truth[weight > 0]
    return Moments(
        count=int(truth.size),
        weight=total,
        mean=mean,
        m2=float(np.dot(weight, (truth - mean) ** 2)),
        sse=float(np.dot(weight, residual**2)),
        sae=float(np.dot(weight, np.abs(residual))),
        low=float(weighted.min()) if weighted.size else np.inf,
        high=float(weighted.max()) if weighted.size else -np.inf,
    )


# ---- merging -------------------------------------------------------------------------------


def merge(first: State, second: State) -> State:
    """The state of the two sets of entries together (the states are of one kind)."""
    if isinstance(first, Labels) and isinstance(second, Labels):
        return _merge_labels(first, second)
    if isinstance(first, Ranks) and isinstance(second, Ranks):
        return _merge_ranks(first, second)
    if isinstance(first, Moments) and isinstance(second, Moments):
        return _merge_moments(first, second)
    raise TypeError(f"states of different kinds: {type(first).__name__}, {type(second).__name__}")


def _merge_labels(first: Labels, second: Labels) -> Labels:
    if first.multiclass != second.multiclass:
        readings = ("multiclass" if part.multiclass else "binary" for part in (first, second))
        raise DifferentReadings(
            ["body", "states"],
            "a classification metric read {} labels in one state and {} in another (the "
            "shards' shapes differ); merge shards of one layout".format(*readings),
        )
    labels = np.union1d(first.labels, second.labels).astype(np.int64)
    pairs = _pairs(
        labels,
        np.concatenate([first.truth, second.truth]),
        np.concatenate([first.guess, second.guess]),
        np.concatenate([first.weight, second.weight]),
    )
    return Labels(labels, *pairs, first.count + second.count, first.multiclass)


def _merge_ranks(first: Ranks, second: Ranks) -> Ranks:
    scores, at = np.unique(np.concatenate([first.scores, second.scores]), return_inverse=True)
    positive = np.bincount(at, np.concatenate([first.positive, second.positive]), scores.size)
    negative = np.bincount(at, np.concatenate([first.negative, second.negative]), scores.size)
    return Ranks(
        scores,
        positive,
        negative,
        first.positives + second.positives,
        first.negatives + second.negatives,
    )


def _merge_moments(first: Moments, second: Moments) -> Moments:
    total = first.weight + second.weight
    if first.weight == 0 or second.weight == 0:
        mean = first.mean if second.weight == 0 else second.mean
        m2 = first.m2 + second.m2
    else:
        delta = second.mean - first.mean
        mean = first.mean + delta * (second.weight / total)
        m2 = first.m2 + second.m2 + delta * delta * (first.weight * second.weight / total)
    return Moments(
        count=first.count + second.count,
        weight=total,
        mean=mean,
        m2=m2,
        sse=first.sse + second.sse,
        sae=first.sae + second.sae,
        low=min(first.low, second.low),
        high=max(first.high, second.high),
    )


# ---- values --------------------------------------------------------------------------------


def _require_weight(name: str, count: int, weight: float, loc: Loc) -> None:
    if count == 0:
        raise Undefined(loc, f"{name}: mask excludes every entry")
    if not weight > 0:
        raise Undefined(
            loc,
            f"{name}: the weights of the entries (sample_weight x mask) sum to 0, so the "
            "weighted mean it is built on is undefined",
        )


def accuracy(state: Labels, loc: Loc) -> float:
    """Weighted fraction of correct labels (``sklearn.metrics.accuracy_score``)."""
    total = float(state.weight.sum())
    _require_weight("accuracy", state.count, total, loc)
    return float(state.weight[state.truth == state.guess].sum() / total)


def divide_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0 (``zero_division="warn"``)."""
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)


def label_score(state: Labels, score: Score, average: Average, loc: Loc) -> float:
    r"""Precision :math:`TP_k/P_k`, recall :math:`TP_k/T_k` or F1 :math:`2TP_k/(T_k+P_k)`:
    binary readings for the positive class 1; multiclass ones over the labels present,
    ``macro`` (plain mean), ``weighted`` (by support :math:`T_k`) or ``micro`` (counts summed
    first), as ``sklearn.metrics.precision_score`` / ``recall_score`` / ``f1_score`` with
    ``zero_division="warn"`` (0.0)."""
    _require_weight(score, state.count, float(state.weight.sum()), loc)
    true_positives, predicted, support = state.totals()
    if not state.multiclass:
        keep = state.labels == 1
        true_positives, predicted, support = true_positives[keep], predicted[keep], support[keep]
        average = "macro"
    if average == "micro":
        true_positives, predicted, support = (
            np.atleast_1d(total.sum()) for total in (true_positives, predicted, support)
        )
    if score == "precision":
        per_label = divide_or_zero(true_positives, predicted)
    elif score == "recall":
        per_label = divide_or_zero(true_positives, support)
    else:
        per_label = divide_or_zero(2.0 * true_positives, support + predicted)
    if average == "weighted":
        return float(np.dot(per_label, support) / support.sum())
    return float(per_label.mean())


def roc_auc(state: Ranks, loc: Loc) -> float:
    r"""The trapezoids between the points :math:`(FPR_t, TPR_t)`, one per distinct score
    :math:`t` (descending) from (0, 0): the weighted probability that a positive outranks a
    negative, ties counting 1/2 (``sklearn.metrics.roc_auc_score``)."""
    positive_total, negative_total = float(state.positive.sum()), float(state.negative.sum())
    _require_weight(
        "roc_auc", state.positives + state.negatives, positive_total + negative_total, loc
    )
    for label, present, total, other in (
        (1, state.positives, positive_total, 0),
        (0, state.negatives, negative_total, 1),
    ):
        if present == 0:
            raise Undefined(
                loc, f"roc_auc needs both classes in targets: every kept target is {other}"
            )
        if not total > 0:
            raise Undefined(
                loc,
                f"roc_auc needs both classes in targets: the targets equal to {label} all have "
                "weight 0 (sample_weight x mask)",
            )
    true_positives = np.cumsum(state.positive[::-1])
    false_positives = np.cumsum(state.negative[::-1])
    tpr = np.r_[0.0, true_positives / true_positives[-1]]
    fpr = np.r_[0.0, false_positives / false_positives[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def r2(state: Moments, loc: Loc) -> float:
    r""":math:`1 - SS_{res}/SS_{tot}` (``sklearn.metrics.r2_score`` on the flattened entries)."""
    _require_weight("r2", state.count, state.weight, loc)
    if state.count < 2:
        raise Undefined(
            loc,
            "r2 needs at least two entries: on one, SS_tot = sum w (y - mean y)^2 is 0 and "
            "r2 = 1 - SS_res / SS_tot is undefined (scikit-learn returns nan)",
        )
    if state.low == state.high:
        raise Undefined(
            loc,
            f"r2 is undefined: every target (with positive weight) equals {state.low:g}, so "
            "SS_tot = sum w (y - mean y)^2 = 0 and r2 = 1 - SS_res / SS_tot divides by 0 "
            "(scikit-learn returns 1.0 or 0.0 by convention); use rmse or mae",
        )
    return 1.0 - state.sse / state.m2


def rmse(state: Moments, loc: Loc) -> float:
    """``sklearn.metrics.root_mean_squared_error``."""
    _require_weight("rmse", state.count, state.weight, loc)
    return float(np.sqrt(state.sse / state.weight))


def mae(state: Moments, loc: Loc) -> float:
    """``sklearn.metrics.mean_absolute_error``."""
    _require_weight("mae", state.count, state.weight, loc)
    return state.sae / state.weight
