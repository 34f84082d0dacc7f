"""The metrics, declared once: name, params model, the scikit-learn function each mirrors,
and how it is evaluated (a reading of the payload, then a formula)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.scores import formulas
from service.scores.params import (
    ClassificationParams,
    MetricRequest,
    RegressionParams,
    RocAucParams,
)
from service.scores.readings import ValueEntries, read_labels, read_scores, read_values
from service.validation.contracts import Inputs
from service.validation.errors import DomainError
from service.validation.structure import Params

Evaluate = Callable[[Inputs, MetricRequest], float]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``evaluate(inputs, request)`` validates the payload and returns its value."""

    name: str
    params: type[Params]
    mirrors: str
    summary: str
    evaluate: Evaluate


def _accuracy(inputs: Inputs, request: MetricRequest) -> float:
    entries = read_labels(inputs, request)
    return formulas.accuracy(entries.truth, entries.guess, entries.weight)


def _label_score(score: formulas.Score) -> Evaluate:
    """precision, recall or f1: binary = the positive class 1, multiclass = ``average``."""

    def evaluate(inputs: Inputs, request: MetricRequest) -> float:
        entries = read_labels(inputs, request)
        average: formulas.Average = request.params.average if entries.multiclass else "macro"
        return formulas.precision_recall_f1(
            score, entries.truth, entries.guess, entries.weight, entries.labels, average
        )

    return evaluate


def _roc_auc(inputs: Inputs, request: MetricRequest) -> float:
    entries = read_scores(inputs, request)
    return formulas.roc_auc(entries.truth, entries.guess, entries.weight)


def _regression(formula: Callable[..., float]) -> Evaluate:
    def evaluate(inputs: Inputs, request: MetricRequest) -> float:
        entries = read_values(inputs, request)
        return formula(entries.truth, entries.guess, entries.weight)

    return evaluate


def _r2(inputs: Inputs, request: MetricRequest) -> float:
    entries = read_values(inputs, request)
    require_target_variance(entries, request)
    return formulas.r2(entries.truth, entries.guess, entries.weight)


def require_target_variance(entries: ValueEntries, request: MetricRequest) -> None:
    """r2 divides by SS_tot: at least two entries, and targets that are not all equal."""
    if entries.truth.size < 2:
        raise DomainError(
            request.loc,
            "r2 needs at least two entries: on one, SS_tot = sum w (y - mean y)^2 is 0 and "
            "r2 = 1 - SS_res / SS_tot is undefined (scikit-learn returns nan)",
        )
    weighted = entries.truth[entries.weight > 0]
    if (weighted == weighted[0]).all():
        raise DomainError(
            request.loc,
            f"r2 is undefined: every target (with positive weight) equals {weighted[0]:g}, so "
            "SS_tot = sum w (y - mean y)^2 = 0 and r2 = 1 - SS_res / SS_tot divides by 0 "
            "(scikit-learn returns 1.0 or 0.0 by convention); use rmse or mae",
        )


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "accuracy",
            ClassificationParams,
            "sklearn.metrics.accuracy_score",
            "Weighted fraction of correct labels (every entry, not subset accuracy).",
            _accuracy,
        ),
        MetricSpec(
            "precision",
            ClassificationParams,
            "sklearn.metrics.precision_score",
            "TP / (TP + FP): binary (class 1) or averaged over the classes.",
            _label_score("precision"),
        ),
        MetricSpec(
            "recall",
            ClassificationParams,
            "sklearn.metrics.recall_score",
            "TP / (TP + FN): binary (class 1) or averaged over the classes.",
            _label_score("recall"),
        ),
        MetricSpec(
            "f1",
            ClassificationParams,
            "sklearn.metrics.f1_score",
            "2 TP / (2 TP + FP + FN): binary (class 1) or averaged over the classes.",
            _label_score("f1"),
        ),
        MetricSpec(
            "roc_auc",
            RocAucParams,
            "sklearn.metrics.roc_auc_score",
            "Area under the ROC curve of the scores, every entry (binary only).",
            _roc_auc,
        ),
        MetricSpec(
            "r2",
            RegressionParams,
            "sklearn.metrics.r2_score",
            "1 - SS_res / SS_tot over every entry.",
            _r2,
        ),
        MetricSpec(
            "rmse",
            RegressionParams,
            "sklearn.metrics.root_mean_squared_error",
            "Root of the weighted mean squared error.",
            _regression(formulas.rmse),
        ),
        MetricSpec(
            "mae",
            RegressionParams,
            "sklearn.metrics.mean_absolute_error",
            "Weighted mean absolute error.",
            _regression(formulas.mae),
        ),
    )
}
