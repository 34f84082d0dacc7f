"""Every 422 of service.scores: the metric requests it refuses while parsing and the inputs it
refuses while computing, each naming the metric (its index), the field and the value.
"""

from __future__ import annotations

import numpy as np
import pytest

from service.scores import compute_metrics, parse_metrics
from service.validation.errors import (
    DomainError,
    InvalidInput,
    NonFiniteResult,
    ShapeError,
    StructureError,
)
from tests.scores.helpers import (
    make_inputs,
)

# --- every 422 ------------------------------------------------------------------------------


def refused(error_type: type[InvalidInput], loc: list, fragment: str, call) -> None:
    with pytest.raises(error_type) as caught:
        call()
    error = caught.value
    assert error.errors[0]["loc"] == loc
    assert fragment in error.errors[0]["msg"], error.errors[0]["msg"]


M0 = ["body", "metrics", 0]
LOGITS_4x3 = np.arange(12.0).reshape(4, 3) % 5


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
