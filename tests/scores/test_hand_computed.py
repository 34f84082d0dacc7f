"""service.scores against values computed by hand (each says how; scikit-learn's docstring
examples are named), and its interface: order kept, floats returned, defaults.
"""

from __future__ import annotations

import numpy as np
import pytest

from service.scores import METRICS, MetricRequest, compute_metrics, parse_metrics
from tests.scores.helpers import (
    make_inputs,
    value,
)

# --- hand-computed values -------------------------------------------------------------------

#: Targets [1, 0, 1, 1, 0], probabilities [.9, .6, .4, .8, .1]: labels at 0.5 are
#: [1, 1, 0, 1, 0], so TP = 2, FP = 1, FN = 1, TN = 1.
HAND_BINARY = make_inputs([0.9, 0.6, 0.4, 0.8, 0.1], [1, 0, 1, 1, 0])


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("accuracy", 3 / 5),  # (TP + TN) / 5
        ("precision", 2 / 3),  # TP / (TP + FP)
        ("recall", 2 / 3),  # TP / (TP + FN)
        ("f1", 2 / 3),  # 2 TP / (2 TP + FP + FN) = 4 / 6
        # Pairs (positive, negative) with the positive ranked higher: .9>.6, .9>.1, .4>.1,
        # .8>.6, .8>.1, but not .4<.6: 5 of 6.
        ("roc_auc", 5 / 6),
        # Threshold 0.7: labels [1, 0, 0, 1, 0], TP = 2, FP = 0, FN = 1 -> 2 / 3 and 4 / 5.
        ({"name": "recall", "params": {"threshold": 0.7}}, 2 / 3),
        ({"name": "f1", "params": {"threshold": 0.7}}, 4 / 5),
    ],
)
def test_hand_computed_binary(metric, expected):
    assert value(metric, HAND_BINARY) == pytest.approx(expected, rel=1e-15)


def test_hand_computed_weighted_roc_auc_with_a_tie():
    """Positives (s, w): (0.5, 1), (0.2, 1); negative (0.5, 2). The tied pair counts 1/2:
    (0.5 * 1 * 2 + 0 * 1 * 2) / (2 * 2) = 1/4."""
    inputs = make_inputs([0.5, 0.5, 0.2], [1, 0, 1], sample_weight=[1, 2, 1])
    assert value("roc_auc", inputs) == pytest.approx(0.25, rel=1e-15)


def test_multi_label_accuracy_counts_every_entry_not_subsets():
    """Labels [[1, 1], [0, 1]] against [[1, 0], [1, 1]]: 2 of 4 entries right (0.5), while
    scikit-learn's subset accuracy on the rows would be 0."""
    inputs = make_inputs([[0.8, 0.7], [0.2, 0.9]], [[1, 0], [1, 1]], sample_weight=[3, 3])
    assert value("accuracy", inputs) == 0.5


#: scikit-learn's precision_score / recall_score / f1_score docstring example:
#: y_true = [0, 1, 2, 0, 1, 2], y_pred = [0, 2, 1, 0, 0, 1]. Class 0: TP 2, P 3, T 2 (precision
#: 2/3, recall 1, F1 4/5); classes 1 and 2: TP 0. Supports are equal, so weighted = macro.
DOCSTRING_TRUE = [0, 1, 2, 0, 1, 2]
DOCSTRING_PROBABILITIES = np.eye(3)[[0, 2, 1, 0, 0, 1]] * 0.8 + 0.1


@pytest.mark.parametrize(
    ("name", "average", "expected"),
    [
        ("precision", "macro", 2 / 9),
        ("precision", "micro", 1 / 3),
        ("precision", "weighted", 2 / 9),
        ("recall", "macro", 1 / 3),
        ("recall", "micro", 1 / 3),
        ("recall", "weighted", 1 / 3),
        ("f1", "macro", 4 / 15),
        ("f1", "micro", 1 / 3),
        ("f1", "weighted", 4 / 15),
        ("accuracy", "macro", 1 / 3),
    ],
)
def test_hand_computed_multiclass_sklearn_docstring(name, average, expected):
    inputs = make_inputs(DOCSTRING_PROBABILITIES, DOCSTRING_TRUE)
    assert value({"name": name, "params": {"average": average}}, inputs) == pytest.approx(expected)


#: r2_score / mean_absolute_error / root_mean_squared_error docstrings: y_true = [3, -0.5, 2, 7],
#: y_pred = [2.5, 0.0, 2, 8]. SS_res = 1.5, mean 2.875, SS_tot = 29.1875.
@pytest.mark.parametrize(
    ("name", "expected"),
    [("r2", 1 - 1.5 / 29.1875), ("mae", 0.5), ("rmse", np.sqrt(1.5 / 4))],
)
def test_hand_computed_regression_sklearn_docstring(name, expected):
    inputs = make_inputs([2.5, 0.0, 2, 8], [3, -0.5, 2, 7])
    assert value(name, inputs) == pytest.approx(expected, rel=1e-15)


def test_mask_excludes_entries_and_scales_weights():
    """|errors| = [1, 2, 9]; mask [1, 0.5, 0]: (1 * 1 + 0.5 * 2) / 1.5 = 4/3."""
    inputs = make_inputs([1, 2, 9], [0, 0, 0], mask=[1, 0.5, 0])
    assert value("mae", inputs) == pytest.approx(4 / 3, rel=1e-15)


def test_multiclass_spatial_positions():
    """Predictions (1, 2, 3): argmax over axis 1 per position is [1, 0, 1]; labels [1, 1, 1]."""
    predictions = [[[0.1, 0.9, 0.3], [0.8, 0.2, 0.7]]]
    inputs = make_inputs(predictions, [[1, 1, 1]], mask=[[1, 1, 0]])
    assert value("accuracy", inputs) == pytest.approx(1 / 2)  # position 2 is masked out


def test_roc_auc_ranks_any_scores():
    """Logits rank as their probabilities do: from_logits changes nothing, no range check."""
    logits = make_inputs([-2.0, 1.7, 0.3, 4.0], [0, 1, 0, 1])
    assert value("roc_auc", logits) == 1.0
    assert value({"name": "roc_auc", "params": {"from_logits": True}}, logits) == 1.0


def test_extreme_logits_stay_finite_without_warnings():
    inputs = make_inputs([[-800.0, 800.0], [800.0, -800.0]], [[0, 1], [1, 1]])
    params = {"from_logits": True}
    assert value({"name": "accuracy", "params": params}, inputs) == 0.75
    assert value({"name": "roc_auc", "params": params}, inputs) == pytest.approx(5 / 6)


# --- the interface --------------------------------------------------------------------------


def test_parse_and_compute_keep_order_and_return_floats():
    raw = ["mae", {"name": "accuracy"}, {"name": "roc_auc", "params": None}, "rmse", "r2"]
    requests = parse_metrics(raw)
    assert [(r.name, r.index) for r in requests] == [
        ("mae", 0), ("accuracy", 1), ("roc_auc", 2), ("rmse", 3), ("r2", 4),
    ]  # fmt: skip
    assert isinstance(requests[0], MetricRequest)
    values = compute_metrics(requests, HAND_BINARY)
    assert list(values) == ["mae", "accuracy", "roc_auc", "rmse", "r2"]
    assert all(type(v) is float and np.isfinite(v) for v in values.values())


def test_no_metrics():
    assert parse_metrics(None) == [] and parse_metrics([]) == []
    assert compute_metrics([], HAND_BINARY) == {}


def test_defaults():
    (request,) = parse_metrics(["f1"])
    assert request.params.threshold == 0.5 and request.params.average == "macro"
    assert not request.params.from_logits and not request.params.one_hot
    assert set(METRICS) == {"accuracy", "precision", "recall", "f1", "roc_auc", "r2", "rmse", "mae"}
