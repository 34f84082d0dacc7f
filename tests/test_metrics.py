"""service.scores against scikit-learn (test-only) and hand-computed values; every 422.

scikit-learn is the reference: each metric is compared with the function it mirrors on the
flattened, kept entries (weights ``sample_weight[n] * mask``), with ``zero_division=0.0``, the
value of scikit-learn's default ``"warn"`` without the warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from service.scores import METRICS, MetricRequest, compute_metrics, parse_metrics
from service.validation.contracts import Inputs
from service.validation.errors import (
    DomainError,
    InvalidInput,
    NonFiniteResult,
    ShapeError,
    StructureError,
)

CLASSIFICATION = ("accuracy", "precision", "recall", "f1")
AVERAGES = ("macro", "micro", "weighted")
WEIGHTINGS = ("none", "sample_weight", "mask", "both")
SKLEARN = {
    "accuracy": skm.accuracy_score,
    "precision": skm.precision_score,
    "recall": skm.recall_score,
    "f1": skm.f1_score,
    "roc_auc": skm.roc_auc_score,
    "r2": skm.r2_score,
    "rmse": skm.root_mean_squared_error,
    "mae": skm.mean_absolute_error,
}


def value(metric: str | dict[str, Any], inputs: Inputs) -> float:
    """The value of one metric (a name or ``{"name", "params"}``)."""
    (request,) = parse_metrics([metric])
    return compute_metrics([request], inputs)[request.name]


def make_inputs(predictions: Any, targets: Any, sample_weight: Any = None, mask: Any = None):
    as_array = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    return Inputs(as_array(predictions), as_array(targets), as_array(sample_weight), as_array(mask))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def draw_weights(rng: np.random.Generator, weighting: str, grid: tuple[int, ...]):
    """``sample_weight`` (N,) with one zero, and/or a mask over ``grid`` in {0, 0.5, 1}."""
    sample_weight = mask = None
    if weighting in ("sample_weight", "both"):
        sample_weight = rng.uniform(0.1, 3.0, grid[0])
        sample_weight[1] = 0.0
    if weighting in ("mask", "both"):
        mask = rng.choice([0.0, 0.5, 1.0], size=grid, p=[0.3, 0.2, 0.5])
    return sample_weight, mask


def kept_weights(sample_weight, mask, grid: tuple[int, ...]):
    """What scikit-learn gets: the weights of the kept entries and which entries are kept."""
    weight = np.ones(grid)
    if sample_weight is not None:
        weight = weight * sample_weight.reshape(-1, *[1] * (len(grid) - 1))
    kept = np.ones(weight.size, dtype=bool) if mask is None else mask.reshape(-1) != 0
    if mask is not None:
        weight = weight * mask
    unweighted = sample_weight is None and mask is None
    return (None if unweighted else weight.reshape(-1)[kept]), kept


def sklearn_value(name: str, truth, guess, weight, **kwargs) -> float:
    if name in ("precision", "recall", "f1"):
        kwargs["zero_division"] = 0.0
    return float(SKLEARN[name](truth, guess, sample_weight=weight, **kwargs))


# --- binary / multi-label -------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.5, 0.3])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("shape", [(40,), (12, 5), (6, 3, 4)])
@pytest.mark.parametrize("name", CLASSIFICATION)
def test_binary_matches_sklearn(name, shape, weighting, from_logits, threshold):
    rng = np.random.default_rng([len(shape), WEIGHTINGS.index(weighting), int(from_logits)])
    targets = (rng.random(shape) < 0.4).astype(np.float64)
    predictions = rng.normal(0, 3, shape) if from_logits else rng.random(shape)
    sample_weight, mask = draw_weights(rng, weighting, shape)
    params = {"threshold": threshold, "from_logits": from_logits}
    got = value(
        {"name": name, "params": params}, make_inputs(predictions, targets, sample_weight, mask)
    )

    probabilities = sigmoid(predictions) if from_logits else predictions
    weight, kept = kept_weights(sample_weight, mask, shape)
    truth = targets.reshape(-1)[kept].astype(int)
    guess = (probabilities.reshape(-1)[kept] >= threshold).astype(int)
    assert got == pytest.approx(sklearn_value(name, truth, guess, weight), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
def test_binary_precision_recall_f1_are_of_class_1_whatever_the_average(name):
    rng = np.random.default_rng(7)
    targets, predictions = (rng.random((20, 3)) < 0.5), rng.random((20, 3))
    inputs = make_inputs(predictions, targets)
    values = [value({"name": name, "params": {"average": a}}, inputs) for a in AVERAGES]
    expected = sklearn_value(name, targets.ravel(), predictions.ravel() >= 0.5, None)
    assert len(set(values)) == 1
    assert values[0] == pytest.approx(expected, rel=1e-12)


# --- multiclass -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["labels", "one_hot"])
@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("shape", [(30, 4), (5, 3, 6)])
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("name", CLASSIFICATION)
def test_multiclass_matches_sklearn(name, average, shape, weighting, encoding):
    rng = np.random.default_rng([len(shape), WEIGHTINGS.index(weighting), len(encoding)])
    classes = shape[1]
    grid = (shape[0], *shape[2:])
    labels = rng.integers(0, classes, grid)
    predictions = rng.normal(size=shape)
    if encoding == "labels":
        targets, params = labels, {"average": average}
    else:
        targets, params = (
            np.moveaxis(np.eye(classes)[labels], -1, 1),
            {"average": average, "one_hot": True},
        )
    sample_weight, mask = draw_weights(rng, weighting, grid)
    got = value(
        {"name": name, "params": params}, make_inputs(predictions, targets, sample_weight, mask)
    )

    weight, kept = kept_weights(sample_weight, mask, grid)
    truth = labels.reshape(-1)[kept]
    guess = predictions.argmax(axis=1).reshape(-1)[kept]
    extra = {} if name == "accuracy" else {"average": average}
    assert got == pytest.approx(sklearn_value(name, truth, guess, weight, **extra), rel=1e-12)


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
def test_multiclass_averages_over_the_labels_present(name, average):
    """Class 3 is never true nor predicted: left out of the average, as scikit-learn's default
    ``labels``; class 2 is predicted only, class 1 true only (both score 0, both counted)."""
    truth = np.array([0, 0, 1, 1, 4, 4, 4])
    guess = np.array([0, 2, 0, 0, 4, 4, 2])
    predictions = np.eye(5)[guess] * 0.6 + 0.1
    got = value({"name": name, "params": {"average": average}}, make_inputs(predictions, truth))
    assert got == pytest.approx(sklearn_value(name, truth, guess, None, average=average))


# --- roc_auc --------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("shape", [(50,), (10, 4), (4, 3, 5)])
def test_roc_auc_matches_sklearn(shape, weighting, from_logits, ties):
    rng = np.random.default_rng(
        [len(shape), WEIGHTINGS.index(weighting), int(from_logits), int(ties)]
    )
    targets = (rng.random(shape) < 0.5).astype(np.float64)
    scores = rng.normal(0, 2, shape) if from_logits else rng.random(shape)
    if ties:
        scores = np.round(scores, 1)
    sample_weight, mask = draw_weights(rng, weighting, shape)
    params = {"from_logits": from_logits}
    got = value(
        {"name": "roc_auc", "params": params}, make_inputs(scores, targets, sample_weight, mask)
    )

    weight, kept = kept_weights(sample_weight, mask, shape)
    probabilities = sigmoid(scores) if from_logits else scores
    expected = sklearn_value("roc_auc", targets.ravel()[kept], probabilities.ravel()[kept], weight)
    assert got == pytest.approx(expected, rel=1e-12)


# --- regression -----------------------------------------------------------------------------


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("shape", [(25,), (8, 3), (3, 2, 4)])
@pytest.mark.parametrize("name", ["r2", "rmse", "mae"])
def test_regression_matches_sklearn(name, shape, weighting):
    rng = np.random.default_rng([len(shape), WEIGHTINGS.index(weighting)])
    targets = rng.normal(size=shape)
    predictions = targets + rng.normal(0, 0.5, shape)
    sample_weight, mask = draw_weights(rng, weighting, shape)
    got = value(name, make_inputs(predictions, targets, sample_weight, mask))

    weight, kept = kept_weights(sample_weight, mask, shape)
    expected = sklearn_value(name, targets.ravel()[kept], predictions.ravel()[kept], weight)
    assert got == pytest.approx(expected, rel=1e-12)


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


# --- every 422 ------------------------------------------------------------------------------


def refused(error_type: type[InvalidInput], loc: list, fragment: str, call) -> None:
    with pytest.raises(error_type) as caught:
        call()
    error = caught.value
    assert error.errors[0]["loc"] == loc
    assert fragment in error.errors[0]["msg"], error.errors[0]["msg"]


M0 = ["body", "metrics", 0]


@pytest.mark.parametrize(
    ("raw", "loc", "fragment"),
    [
        (["recal"], M0, "unknown metric 'recal'; did you mean 'recall'"),
        ([{"name": "AUC"}], M0, "Known metrics: accuracy, f1, mae, precision, r2, recall,"),
        ({"name": "f1"}, ["body", "metrics"], "metrics must be a list"),
        ("f1", ["body", "metrics"], "got a string"),
        ([3], M0, 'a metric is a name or {"name": ..., "params": {...}}, got a number'),
        ([{"params": {}}], [*M0, "name"], "metrics[0].name is required"),
        ([{"name": 1}], [*M0, "name"], "must be a string, got a number"),
        ([{"name": "f1", "weight": 1}], [*M0, "weight"], "unknown field 'weight'"),
        ([{"name": "f1", "params": []}], [*M0, "params"], "f1 params must be an object"),
        ([{"name": "f1", "params": {"threshold": 1.5}}], [*M0, "params", "threshold"], "1.5"),
        ([{"name": "f1", "params": {"threshold": -0.1}}], [*M0, "params", "threshold"], "0"),
        ([{"name": "f1", "params": {"threshold": "0.5"}}], [*M0, "params", "threshold"], "'0.5'"),
        ([{"name": "f1", "params": {"threshold": True}}], [*M0, "params", "threshold"], "True"),
        ([{"name": "f1", "params": {"from_logits": "yes"}}], [*M0, "params", "from_logits"], "yes"),
        ([{"name": "f1", "params": {"from_logits": 1}}], [*M0, "params", "from_logits"], "got 1"),
        ([{"name": "f1", "params": {"average": "binary"}}], [*M0, "params", "average"], "'macro'"),
        ([{"name": "f1", "params": {"average": "samples"}}], [*M0, "params", "average"], "samp"),
        ([{"name": "f1", "params": {"one_hot": 1}}], [*M0, "params", "one_hot"], "got 1"),
        (
            [{"name": "f1", "params": {"task": "multiclass"}}],
            [*M0, "params", "task"],
            "unknown parameter 'task' for f1; allowed: threshold, from_logits, average, one_hot",
        ),
        (
            [{"name": "roc_auc", "params": {"threshold": 0.5}}],
            [*M0, "params", "threshold"],
            "allowed: from_logits",
        ),
        ([{"name": "r2", "params": {"from_logits": True}}], [*M0, "params", "from_logits"], "none"),
        (
            ["f1", "accuracy", {"name": "f1", "params": {"average": "micro"}}],
            ["body", "metrics", 2],
            "metric 'f1' is listed twice (metrics[0] and metrics[2])",
        ),
    ],
)
def test_parse_refuses(raw, loc, fragment):
    refused(StructureError, loc, fragment, lambda: parse_metrics(raw))


LOGITS_4x3 = np.arange(12.0).reshape(4, 3) % 5


@pytest.mark.parametrize(
    ("metric", "inputs", "error_type", "loc", "fragment"),
    [
        (
            "roc_auc",
            make_inputs(LOGITS_4x3, [0, 1, 2, 1]),
            ShapeError,
            M0,
            "roc_auc is binary: targets (4,) against predictions (4, 3) are multiclass",
        ),
        (
            "roc_auc",
            make_inputs([0.2, 0.7, 0.9], [1, 1, 1]),
            DomainError,
            M0,
            "roc_auc needs both classes in targets: every kept target is 1",
        ),
        (
            "roc_auc",
            make_inputs([0.2, 0.7, 0.9], [1, 0, 1], mask=[1, 0, 1]),
            DomainError,
            M0,
            "roc_auc needs both classes in targets: every kept target is 1",
        ),
        (
            "roc_auc",
            make_inputs([0.2, 0.7, 0.9], [1, 0, 1], sample_weight=[1, 0, 1]),
            DomainError,
            M0,
            "the targets equal to 0 all have weight 0",
        ),
        ("r2", make_inputs([1.5], [1.0]), DomainError, M0, "r2 needs at least two entries"),
        (
            "r2",
            make_inputs([[1.0, 2.0]], [[1.0, 3.0]], mask=[[1, 0]]),
            DomainError,
            M0,
            "r2 needs at least two entries",
        ),
        (
            "r2",
            make_inputs([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]),
            DomainError,
            M0,
            "every target (with positive weight) equals 2, so SS_tot",
        ),
        (
            "accuracy",
            make_inputs(LOGITS_4x3, [0, 1, 2, 1, 0]),
            ShapeError,
            M0,
            "predictions (4, 3) and targets (5,) fit no reading: binary / multi-label needs "
            "targets of shape (4, 3); multiclass needs integer labels of shape (4,)",
        ),
        (
            "f1",
            make_inputs([0.1, 0.9], [[0, 1], [1, 0]]),
            ShapeError,
            M0,
            "multiclass needs predictions (N, C, ...) with the classes on axis 1",
        ),
        (
            "precision",
            make_inputs([[0.1, 0.9], [0.4, 0.3]], [[0, 1], [2, 0]]),
            DomainError,
            M0,
            "precision: targets[1][0] = 2 is not a binary label",
        ),
        (
            "roc_auc",
            make_inputs([0.1, 0.9, 0.3], [0, 1, 0.5]),
            DomainError,
            M0,
            "roc_auc: targets[2] = 0.5 is not a binary label",
        ),
        (
            "recall",
            make_inputs(LOGITS_4x3, [0, 1, 3, 1]),
            DomainError,
            M0,
            "recall: targets[2] = 3 is not a class index: predictions have 3 class(es) on "
            "axis 1, so labels are in [0, 3)",
        ),
        (
            "recall",
            make_inputs(LOGITS_4x3, [0, -1, 2, 1]),
            DomainError,
            M0,
            "targets[1] = -1 is not a class index",
        ),
        (
            "accuracy",
            make_inputs([[0.3], [0.8]], [0, 1]),
            DomainError,
            M0,
            "targets[1] = 1 is not a class index: predictions have 1 class(es) on axis 1, so "
            "labels are in [0, 1); predictions have a single column",
        ),
        (
            "f1",
            make_inputs(LOGITS_4x3, [0, 1.5, 2, 1]),
            DomainError,
            M0,
            "f1: targets[1] = 1.5 is not an integer class index",
        ),
        (
            {"name": "f1", "params": {"one_hot": True}},
            make_inputs([[0.2, 0.8], [0.6, 0.4]], [[0, 1], [1, 1]]),
            DomainError,
            M0,
            "f1: targets[1][:] holds 2 ones along the class axis 1",
        ),
        (
            {"name": "f1", "params": {"one_hot": True}},
            make_inputs(np.ones((2, 3, 2)), np.zeros((2, 3, 2))),
            DomainError,
            M0,
            "f1: targets[0][:][0] holds 0 ones along the class axis 1",
        ),
        (
            {"name": "f1", "params": {"one_hot": True}},
            make_inputs([[0.2, 0.8], [0.6, 0.4]], [[0, 0.5], [1, 0]]),
            DomainError,
            M0,
            "targets[0][1] = 0.5 is not 0 or 1",
        ),
        (
            {"name": "f1", "params": {"one_hot": True}},
            make_inputs(LOGITS_4x3, [0, 1, 2, 1]),
            ShapeError,
            M0,
            "these targets are integer labels: drop one_hot",
        ),
        (
            {"name": "accuracy", "params": {"one_hot": True}},
            make_inputs([0.1, 0.9], [0, 1]),
            ShapeError,
            M0,
            "one_hot needs predictions (N, C, ...)",
        ),
        (
            "accuracy",
            make_inputs([0.1, 1.7], [0, 1]),
            DomainError,
            M0,
            "accuracy: predictions[1] = 1.7 is outside [0, 1]; predictions are read as "
            'probabilities: send "params": {"from_logits": true}',
        ),
        (
            "mae",
            make_inputs([[1.0, 2.0]], [1.0, 2.0]),
            ShapeError,
            M0,
            "mae compares predictions and targets entry by entry: targets has shape (2,) but "
            "predictions has (1, 2)",
        ),
        (
            "f1",
            make_inputs(LOGITS_4x3, [0, 1, 2, 1], mask=np.ones((4, 3))),
            ShapeError,
            ["body", "mask"],
            "mask has shape (4, 3) but f1 reads every position (n, d1, ...) of a (4,) grid",
        ),
        (
            "rmse",
            make_inputs([1.0, 2.0], [1.0, 2.5], mask=[1, 1.5]),
            DomainError,
            ["body", "mask", 1],
            "mask[1] = 1.5 is outside [0, 1]",
        ),
        (
            "rmse",
            make_inputs([1.0, 2.0], [1.0, 2.5], mask=[0, 0]),
            DomainError,
            M0,
            "rmse: mask excludes every entry",
        ),
        (
            "accuracy",
            make_inputs([0.1, 0.9], [0, 1], sample_weight=[0, 0]),
            DomainError,
            M0,
            "accuracy: the weights of the entries (sample_weight x mask) sum to 0",
        ),
        (
            "accuracy",
            make_inputs([0.1, 0.9], [0, 1], sample_weight=[1, 0], mask=[0, 1]),
            DomainError,
            M0,
            "sum to 0",
        ),
        (
            "mae",
            make_inputs([0.1, 0.9], [0, 1], sample_weight=[1, 1, 1]),
            ShapeError,
            ["body", "sample_weight"],
            "sample_weight must be (2,)",
        ),
        (
            "mae",
            make_inputs([0.1, 0.9], [0, 1], sample_weight=[1, -1]),
            DomainError,
            ["body", "sample_weight", 1],
            "sample_weight[1] = -1 is negative",
        ),
        (
            "rmse",
            make_inputs([1e200, -1e200], [0.0, 0.0]),
            NonFiniteResult,
            M0,
            "rmse overflows float64",
        ),
        (
            "accuracy",
            make_inputs(np.zeros((0, 2)), np.zeros((0, 2))),
            ShapeError,
            ["body", "predictions"],
            "predictions is empty",
        ),
    ],
)
def test_compute_refuses(metric, inputs, error_type, loc, fragment):
    requests = parse_metrics([metric])
    refused(error_type, loc, fragment, lambda: compute_metrics(requests, inputs))


def test_errors_point_at_the_metric_that_does_not_fit():
    """The second metric, r2, refuses the payload: loc names its index."""
    requests = parse_metrics(["accuracy", "r2"])
    inputs = make_inputs([0.2, 0.9], [1.0, 1.0])
    refused(
        DomainError,
        ["body", "metrics", 1],
        "r2 is undefined",
        lambda: compute_metrics(requests, inputs),
    )
