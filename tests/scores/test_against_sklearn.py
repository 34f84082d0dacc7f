"""service.scores against scikit-learn (test-only): each metric is compared with the function it
mirrors on the flattened, kept entries (weights ``sample_weight[n] * mask``), with
``zero_division=0.0``, the value of scikit-learn's default ``"warn"`` without the warning.
Binary and multi-label, multiclass (labels and one-hot, every average), roc_auc with ties, and
the regression metrics, with and without sample weights and masks.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.scores.helpers import (
    AVERAGES,
    CLASSIFICATION,
    WEIGHTINGS,
    draw_weights,
    kept_weights,
    make_inputs,
    sigmoid,
    sklearn_value,
    value,
)

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
