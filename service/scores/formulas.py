r"""The metrics' formulas on flat, weighted entries: NumPy only, each mirroring scikit-learn.

Every function takes the kept entries as 1-D arrays and their weights :math:`w_e \ge 0`, with
:math:`W = \sum_e w_e > 0` (the readings guarantee it). A ratio with a zero denominator is 0.0,
scikit-learn's ``zero_division="warn"`` value.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Score = Literal["precision", "recall", "f1"]
Average = Literal["macro", "micro", "weighted"]


def weighted_mean(values: np.ndarray, weight: np.ndarray) -> float:
    r""":math:`\sum_e w_e x_e / \sum_e w_e` (``numpy.average`` with weights)."""
    return float(np.dot(values, weight) / weight.sum())


def accuracy(truth: np.ndarray, guess: np.ndarray, weight: np.ndarray) -> float:
    r"""Weighted fraction of correct labels: :math:`\sum_e w_e [y_e = \hat y_e] / W`.

    Mirrors ``sklearn.metrics.accuracy_score(y, y_hat, sample_weight=w)``.
    """
    return weighted_mean((truth == guess).astype(np.float64), weight)


def label_counts(
    truth: np.ndarray, guess: np.ndarray, weight: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Per label :math:`k`: weighted true positives :math:`TP_k = \sum_{y=\hat y=k} w`,
    predicted :math:`P_k = \sum_{\hat y=k} w` and true :math:`T_k = \sum_{y=k} w` (support).

    The sums of ``sklearn.metrics.multilabel_confusion_matrix``, for ``labels`` only.
    """
    size = int(max(truth.max(), guess.max(), labels.max())) + 1
    hit = truth == guess
    true_positives = np.bincount(truth[hit], weight[hit], minlength=size)[labels]
    predicted = np.bincount(guess, weight, minlength=size)[labels]
    support = np.bincount(truth, weight, minlength=size)[labels]
    return true_positives, predicted, support


def divide_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0 (``zero_division="warn"``)."""
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)


def precision_recall_f1(
    score: Score,
    truth: np.ndarray,
    guess: np.ndarray,
    weight: np.ndarray,
    labels: np.ndarray,
    average: Average,
) -> float:
    r"""Precision :math:`TP_k/P_k`, recall :math:`TP_k/T_k` or F1 :math:`2TP_k/(T_k+P_k)` over
    ``labels``, then averaged.

    - ``macro``: the plain mean over the labels;
    - ``weighted``: the mean weighted by the support :math:`T_k`;
    - ``micro``: the counts summed over the labels first, then one ratio.

    Mirrors ``sklearn.metrics.precision_score`` / ``recall_score`` / ``f1_score`` with
    ``labels``, ``average``, ``sample_weight=w`` and ``zero_division="warn"`` (0.0). With
    ``labels=[1]`` this is their ``average="binary"`` (positive class 1).
    """
    true_positives, predicted, support = label_counts(truth, guess, weight, labels)
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


def roc_auc(truth: np.ndarray, score: np.ndarray, weight: np.ndarray) -> float:
    r"""Area under the ROC curve: the trapezoids between the points
    :math:`(FPR_t, TPR_t)`, one per distinct score :math:`t` (descending), from (0, 0).

    :math:`TPR_t = \sum_{y=1, s \ge t} w / \sum_{y=1} w` and
    :math:`FPR_t = \sum_{y=0, s \ge t} w / \sum_{y=0} w`; equivalently the weighted probability
    that a positive outranks a negative, ties counting 1/2. Mirrors
    ``sklearn.metrics.roc_auc_score(y, s, sample_weight=w)`` (``roc_curve`` + ``auc``).
    ``truth`` in {0, 1}, both classes with positive weight.
    """
    order = np.argsort(score, kind="mergesort")[::-1]
    score, truth, weight = score[order], truth[order], weight[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    true_positives = np.cumsum(weight * truth)[last_of_each_score]
    false_positives = np.cumsum(weight * (1.0 - truth))[last_of_each_score]
    tpr = np.r_[0.0, true_positives / true_positives[-1]]
    fpr = np.r_[0.0, false_positives / false_positives[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def r2(truth: np.ndarray, value: np.ndarray, weight: np.ndarray) -> float:
    r"""Coefficient of determination :math:`1 - SS_{res}/SS_{tot}`, with
    :math:`SS_{res} = \sum_e w_e (y_e - \hat y_e)^2`, :math:`SS_{tot} = \sum_e w_e (y_e -
    \bar y)^2`, :math:`\bar y = \sum_e w_e y_e / W`.

    Mirrors ``sklearn.metrics.r2_score(y, y_hat, sample_weight=w)`` on the flattened entries.
    :math:`SS_{tot} > 0` (targets not constant) is the caller's check.
    """
    mean = weighted_mean(truth, weight)
    residual = np.dot(weight, (truth - value) ** 2)
    total = np.dot(weight, (truth - mean) ** 2)
    return float(1.0 - residual / total)


def rmse(truth: np.ndarray, value: np.ndarray, weight: np.ndarray) -> float:
    r"""Root mean squared error :math:`\sqrt{\sum_e w_e (y_e - \hat y_e)^2 / W}`.

    Mirrors ``sklearn.metrics.root_mean_squared_error(y, y_hat, sample_weight=w)``.
    """
    return float(np.sqrt(weighted_mean((truth - value) ** 2, weight)))


def mae(truth: np.ndarray, value: np.ndarray, weight: np.ndarray) -> float:
    r"""Mean absolute error :math:`\sum_e w_e |y_e - \hat y_e| / W`.

    Mirrors ``sklearn.metrics.mean_absolute_error(y, y_hat, sample_weight=w)``.
    """
    return weighted_mean(np.abs(truth - value), weight)
