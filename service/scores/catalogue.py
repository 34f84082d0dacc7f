"""The metrics, declared once: name, params model, the scikit-learn function each mirrors,
and how it is evaluated: a reading of the payload (its entries), their state, the value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.scores import state
from service.scores.params import (
    ClassificationParams,
    MetricRequest,
    RegressionParams,
    RocAucParams,
)
from service.scores.readings import Entries, read_labels, read_scores, read_values
from service.validation.contracts import Inputs
from service.validation.structure import Params

Read = Callable[[Inputs, MetricRequest], Entries]
Build = Callable[[Entries], state.State]
Value = Callable[[Any, MetricRequest], float]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: ``read(inputs, request)`` validates the payload and returns its entries,
    ``build(entries)`` their state (:mod:`service.scores.state`), ``value(state, request)`` the
    metric (or :class:`~service.scores.state.Undefined`)."""

    name: str
    params: type[Params]
    mirrors: str
    summary: str
    read: Read
    build: Build
    value: Value

    @property
    def state_type(self) -> type:
        """The kind of state the metric is computed from."""
        return _STATE_TYPES[self.build]


def _labels(entries: Entries) -> state.State:
    return state.labels_of(entries.truth, entries.guess, entries.weight, entries.multiclass)


def _ranks(entries: Entries) -> state.State:
    return state.ranks_of(entries.truth, entries.guess, entries.weight)


def _moments(entries: Entries) -> state.State:
    return state.moments_of(entries.truth, entries.guess, entries.weight)


_STATE_TYPES: dict[Build, type] = {
    _labels: state.Labels,
    _ranks: state.Ranks,
    _moments: state.Moments,
}


def _accuracy(labels: state.Labels, request: MetricRequest) -> float:
    return state.accuracy(labels, request.loc)


def _label_score(score: state.Score) -> Value:
    """precision, recall or f1: binary = the positive class 1, multiclass = ``average``."""

    def value(labels: state.Labels, request: MetricRequest) -> float:
        return state.label_score(labels, score, request.params.average, request.loc)

    return value


def _of(formula: Callable[[Any, Any], float]) -> Value:
    def value(of: Any, request: MetricRequest) -> float:
        return formula(of, request.loc)

    return value


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "accuracy",
            ClassificationParams,
            "sklearn.metrics.accuracy_score",
            "Weighted fraction of correct labels (every entry, not subset accuracy).",
            read_labels,
            _labels,
            _accuracy,
        ),
        MetricSpec(
            "precision",
            ClassificationParams,
            "sklearn.metrics.precision_score",
            "TP / (TP + FP): binary (class 1) or averaged over the classes.",
            read_labels,
            _labels,
            _label_score("precision"),
        ),
        MetricSpec(
            "recall",
            ClassificationParams,
            "sklearn.metrics.recall_score",
            "TP / (TP + FN): binary (class 1) or averaged over the classes.",
            read_labels,
            _labels,
            _label_score("recall"),
        ),
        MetricSpec(
            "f1",
            ClassificationParams,
            "sklearn.metrics.f1_score",
            "2 TP / (2 TP + FP + FN): binary (class 1) or averaged over the classes.",
            read_labels,
            _labels,
            _label_score("f1"),
        ),
        MetricSpec(
            "roc_auc",
            RocAucParams,
            "sklearn.metrics.roc_auc_score",
            "Area under the ROC curve of the scores, every entry (binary only).",
            read_scores,
            _ranks,
            _of(state.roc_auc),
        ),
        MetricSpec(
            "r2",
            RegressionParams,
            "sklearn.metrics.r2_score",
            "1 - SS_res / SS_tot over every entry.",
            read_values,
            _moments,
            _of(state.r2),
        ),
        MetricSpec(
            "rmse",
            RegressionParams,
            "sklearn.metrics.root_mean_squared_error",
            "Root of the weighted mean squared error.",
            read_values,
            _moments,
            _of(state.rmse),
        ),
        MetricSpec(
            "mae",
            RegressionParams,
            "sklearn.metrics.mean_absolute_error",
            "Weighted mean absolute error.",
            read_values,
            _moments,
            _of(state.mae),
        ),
    )
}
