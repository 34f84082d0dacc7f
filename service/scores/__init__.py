"""Evaluation metrics for ``POST /v1/evaluate``: scikit-learn's definitions, in NumPy.

A metric is a name or ``{"name", "params"}``; :func:`parse_metrics` validates the request's
``metrics`` list and :func:`compute_metrics` returns ``{name: value}``, every value a finite
float. Each metric mirrors one scikit-learn function (``sample_weight`` applied as scikit-learn
applies it), on the *entries* of one of the readings below.

Readings (how predictions and targets become flat entries)
----------------------------------------------------------
Classification metrics (``accuracy``, ``precision``, ``recall``, ``f1``) choose the reading
from the shapes, and from ``params.one_hot``:

- **binary / multi-label** -- targets of the predictions' shape ``(N, ...)`` (``one_hot``
  false, the default). Every entry is a binary label: targets in {0, 1}; predicted label 1
  where the probability is ``>= threshold`` (default 0.5). Predictions are probabilities in
  [0, 1], or logits with ``from_logits: true`` (the sigmoid is applied first). Every entry is
  counted once (the arrays are flattened): ``accuracy`` is the fraction of correct entries,
  not scikit-learn's subset accuracy. ``precision``/``recall``/``f1`` are those of the
  positive class 1 (scikit-learn's ``average="binary"``); ``average`` is accepted and ignored.
- **multiclass, integer labels** -- predictions ``(N, C, d1, ...)`` with the classes on
  axis 1 and targets ``(N, d1, ...)`` (the predictions without axis 1), integers in [0, C).
- **multiclass, one-hot** -- ``one_hot: true``: targets of the predictions' shape, in {0, 1},
  exactly one 1 along axis 1 at every position.

In both multiclass readings an entry is a position ``(n, d1, ...)``: the true class is the
label (or the one-hot's 1), the predicted class the argmax over axis 1 (the first maximum on
ties; ``threshold`` and ``from_logits`` change nothing there). ``precision``/``recall``/``f1``
average over the labels present in the targets or the predicted labels (scikit-learn's default
``labels``): ``average`` ``"macro"`` (default, unweighted mean), ``"micro"`` (global counts)
or ``"weighted"`` (mean weighted by each label's weighted support). ``accuracy`` has no
average. Without ``one_hot``, targets of the predictions' shape are always binary/multi-label.

``roc_auc`` is binary only (the binary reading, no ``threshold``): it ranks the scores
themselves, any real numbers (the sigmoid is monotone, so logits rank as their probabilities
do; ``from_logits`` is accepted and changes nothing). It needs both classes among the
targets, with positive weight.

Regression metrics (``r2``, ``rmse``, ``mae``): predictions and targets of one shape, every
entry counted (flattened: ``r2`` is over all entries, not scikit-learn's mean over columns).
``r2`` is refused (422) when fewer than two entries are kept or when the targets are constant,
where scikit-learn returns nan or a conventional 1.0/0.0.

Weights, mask, zero division
----------------------------
An entry of sample n weighs ``sample_weight[n] * mask[entry]`` (each factor 1 when absent):
a sample's weight applies to all of its entries. ``mask`` has the shape of the entries
(predictions' shape for binary and regression readings, ``(N, d1, ...)`` for multiclass),
values in [0, 1]. Entries with mask 0 are excluded, as if absent (they do not count for the
labels present either); other mask values scale the weight. Every entry is validated, masked
or not. The kept weights must not sum to 0. A precision, recall or F1 whose denominator is 0
is 0.0 (scikit-learn's ``zero_division="warn"`` value), without a warning.
"""

from service.scores.catalogue import METRICS, MetricSpec
from service.scores.params import MetricRequest
from service.scores.requests import (
    MetricStates,
    compute_metrics,
    metric_states,
    metric_values,
    parse_metrics,
)

__all__ = [
    "METRICS",
    "MetricRequest",
    "MetricSpec",
    "MetricStates",
    "compute_metrics",
    "metric_states",
    "metric_values",
    "parse_metrics",
]
