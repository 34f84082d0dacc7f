"""Naive references for the binary and categorical losses, typed again from ../shared/LOSSES.md.

Nothing here imports from ``service``. Plain Python floats and the ``math`` module; sums use
``math.fsum``. The sigmoid, log-sigmoid and log-sum-exp are written out below, each in the
textbook form that cannot overflow, so the references also give the limits at logits of
+-1e4. Speed does not matter.

Three shapes of element loss (:data:`tests.reference.REFERENCES` maps each onto the arrays):

- binary ``l(p, y, params, column)``: one entry of predictions and targets; ``column`` is
  the entry's index along the last axis (``pos_weight`` may give one weight per column);
- dense categorical ``l(scores, targets, params)``: the class vector at one position and its
  one-hot or soft target vector;
- labelled categorical ``l(scores, label, params)``: the class vector and its integer label,
  with ``weight(label, params)``, the label's factor in the element weight (0 for
  ``ignore_index``, ``class_weight[label]`` otherwise).

A missing key in ``params`` takes the default stated in LOSSES.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Params = Mapping[str, Any]
DEFAULT_EPS = 1e-7


# --- building blocks -----------------------------------------------------------------------


def clip(p: float, eps: float) -> float:
    """LOSSES.md: pc = clip(p, eps, 1 - eps)."""
    return min(max(p, eps), 1.0 - eps)


def softplus(z: float) -> float:
    """log(1 + e^z); for z > 0 written as z + log(1 + e^-z) so that e^z is never formed."""
    if z > 0.0:
        return z + math.log1p(math.exp(-z))
    return math.log1p(math.exp(z))


def log_sigmoid(x: float) -> float:
    """log(sigmoid(x)) = -log(1 + e^-x) = -softplus(-x)."""
    return -softplus(-x)


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x); for x < 0 as e^x / (1 + e^x), so no exponential overflows.
    sigmoid(-x) is computed on its own where 1 - sigmoid(x) is wanted (no cancellation)."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def log_softmax(scores: Sequence[float]) -> list[float]:
    """log q_c = x_c - log sum_k e^{x_k}, the largest score m taken out of the sum first:
    log sum_k e^{x_k} = m + log1p(sum over the other k of e^{x_k - m}). log1p keeps the other
    classes' share where it is below 1e-16 (a confident prediction, 1 - q_top ~ 1e-87 at a
    margin of 200), which log(1 + share) would round away, so log q_top = -log1p(share) keeps
    its relative precision."""
    top = max(range(len(scores)), key=lambda k: scores[k])
    peak = scores[top]
    rest = math.fsum(math.exp(x - peak) for k, x in enumerate(scores) if k != top)
    # (x - m) - log1p(rest), not x - (m + log1p(rest)): m + log1p(rest) would round the
    # small share away again.
    return [(x - peak) - math.log1p(rest) for x in scores]


def _from_logits(params: Params) -> bool:
    return bool(params.get("from_logits", False))


def _eps(params: Params) -> float:
    return params.get("eps", DEFAULT_EPS)


# --- binary and multi-label: every entry is an element -------------------------------------


def _pos_weight(params: Params, column: int) -> float:
    """One number for every entry, or one per entry of the last axis; 1 when absent."""
    weight = params.get("pos_weight")
    if weight is None:
        return 1.0
    if isinstance(weight, (list, tuple)):
        return float(weight[column])
    return float(weight)


def binary_cross_entropy(p: float, y: float, params: Params, column: int = 0) -> float:
    """y' = y (1 - s) + s / 2; probabilities -[y' log pc + (1 - y') log(1 - pc)];
    logits -[pw y' log sigmoid(x) + (1 - y') log(1 - sigmoid(x))], log(1 - sigmoid(x)) =
    log sigmoid(-x)."""
    smoothing = params.get("label_smoothing", 0.0)
    y = y * (1.0 - smoothing) + smoothing / 2.0
    if _from_logits(params):
        weight = _pos_weight(params, column)
        return -(weight * y * log_sigmoid(p) + (1.0 - y) * log_sigmoid(-p))
    pc = clip(p, _eps(params))
    return -(y * math.log(pc) + (1.0 - y) * math.log(1.0 - pc))


def binary_focal(p: float, y: float, params: Params, column: int = 0) -> float:
    """(1 - p_t)^gamma bce(p, y), p_t = p y + (1 - p)(1 - y), times alpha y + (1 - alpha)(1 - y)
    when alpha is given. 1 - p_t is expanded to y (1 - p) + (1 - y) p, with 1 - p = sigmoid(-x)
    for logits, so it is not a difference of nearly equal numbers."""
    gamma = params.get("gamma", 2.0)
    alpha = params.get("alpha")
    if _from_logits(params):
        positive, negative = sigmoid(p), sigmoid(-p)
        log_positive, log_negative = log_sigmoid(p), log_sigmoid(-p)
    else:
        positive = clip(p, _eps(params))
        negative = 1.0 - positive
        log_positive, log_negative = math.log(positive), math.log(negative)
    cross_entropy = -(y * log_positive + (1.0 - y) * log_negative)
    one_minus_p_t = y * negative + (1.0 - y) * positive
    balance = 1.0 if alpha is None else alpha * y + (1.0 - alpha) * (1.0 - y)
    return balance * one_minus_p_t**gamma * cross_entropy


def _sign(y: float) -> float:
    """Hinge targets: 0 -> -1, 1 -> 1, and -1 stays -1."""
    return -1.0 if y == 0.0 else y


def hinge(p: float, y: float, params: Params, column: int = 0) -> float:
    """max(0, m - t p), m defaults to 1."""
    return max(0.0, params.get("margin", 1.0) - _sign(y) * p)


def squared_hinge(p: float, y: float, params: Params, column: int = 0) -> float:
    """max(0, m - t p)^2."""
    h = max(0.0, params.get("margin", 1.0) - _sign(y) * p)
    return h * h


# --- categorical: every position (n, d1, ...) is an element --------------------------------


def log_probabilities(scores: Sequence[float], params: Params) -> list[float]:
    """log q: log-softmax of logits, or the log of the clipped probabilities."""
    if _from_logits(params):
        return log_softmax(scores)
    eps = _eps(params)
    return [math.log(clip(p, eps)) for p in scores]


def categorical_cross_entropy(
    scores: Sequence[float], targets: Sequence[float], params: Params
) -> float:
    """-sum_c y'_c log q_c, y' = y (1 - s) + s / C."""
    smoothing = params.get("label_smoothing", 0.0)
    classes = len(scores)
    log_q = log_probabilities(scores, params)
    return -math.fsum(
        (y * (1.0 - smoothing) + smoothing / classes) * log_qc
        for y, log_qc in zip(targets, log_q, strict=True)
    )


def one_hot(label: int, classes: int) -> list[float]:
    return [1.0 if c == label else 0.0 for c in range(classes)]


def sparse_categorical_cross_entropy(scores: Sequence[float], label: int, params: Params) -> float:
    """Cross-entropy against one-hot(label). A label outside [0, C) can only be ignore_index,
    whose weight is 0: its loss is reported as 0."""
    if not 0 <= label < len(scores):
        return 0.0
    return categorical_cross_entropy(scores, one_hot(label, len(scores)), params)


def categorical_focal(scores: Sequence[float], targets: Sequence[float], params: Params) -> float:
    """-sum_c alpha y_c (1 - q_c)^gamma log q_c; alpha = 1 when null. For logits 1 - q_c is the
    sum of the other classes' probabilities (exact where q_c rounds to 1)."""
    gamma = params.get("gamma", 2.0)
    alpha = params.get("alpha")
    alpha = 1.0 if alpha is None else alpha
    log_q = log_probabilities(scores, params)
    if _from_logits(params):
        q = [math.exp(value) for value in log_q]
        complement = [math.fsum(q[:c] + q[c + 1 :]) for c in range(len(q))]
    else:
        eps = _eps(params)
        complement = [1.0 - clip(p, eps) for p in scores]
    return -math.fsum(
        alpha * y * rest**gamma * log_qc
        for y, rest, log_qc in zip(targets, complement, log_q, strict=True)
    )


def categorical_hinge(scores: Sequence[float], targets: Sequence[float], params: Params) -> float:
    """Keras: max(0, max_c (1 - y_c) p_c - sum_c y_c p_c + 1). The max runs over every class,
    the target's own (1 - 1) p = 0 included."""
    positive = math.fsum(y * p for y, p in zip(targets, scores, strict=True))
    negative = max((1.0 - y) * p for y, p in zip(targets, scores, strict=True))
    return max(0.0, negative - positive + 1.0)


def kl_divergence(scores: Sequence[float], targets: Sequence[float], params: Params) -> float:
    """sum_c y_c (log y_c - log q_c), a class with y_c = 0 contributing 0 (0 log 0 = 0)."""
    log_q = log_probabilities(scores, params)
    return math.fsum(
        y * (math.log(y) - log_qc) for y, log_qc in zip(targets, log_q, strict=True) if y > 0.0
    )


def multi_margin(scores: Sequence[float], label: int, params: Params) -> float:
    """PyTorch MultiMarginLoss: sum_{j != t} max(0, m - x_t + x_j)^P / C, m = 1, P = 1."""
    margin = params.get("margin", 1.0)
    power = params.get("p", 1)
    terms = [
        max(0.0, margin - scores[label] + x) ** power for j, x in enumerate(scores) if j != label
    ]
    return math.fsum(terms) / len(scores)


def sparse_label_weight(label: int, params: Params) -> float:
    """0 for ignore_index (default -100), else class_weight[label] (default all 1)."""
    if label == params.get("ignore_index", -100):
        return 0.0
    class_weight = params.get("class_weight")
    return 1.0 if class_weight is None else float(class_weight[label])


def unit_label_weight(label: int, params: Params) -> float:
    """Every label weighs 1 (multi_margin: no ignore_index, no class_weight)."""
    return 1.0
