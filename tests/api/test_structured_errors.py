"""Every 422 the overlap, box and sequence losses' inputs can cause, through
POST /v1/losses/{name}: the first error's ``loc`` and the fragments its message must contain;
infeasible CTC samples named one by one (zero_infinity scores them 0 instead).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from tests.api.helpers import (
    assert_names_the_problem,
    assert_problem,
    post,
    post_loss,
)

#: One row of a parametrised table (every loss of issue 4 is registered now: no skip).
case = pytest.param

# --- 422 -------------------------------------------------------------------------------------

SEQ = {"predictions": [[[0.5, 0.5], [0.25, 0.75]]], "targets": [[1, 0]]}
FRAMES = {"predictions": [[[0.4, 0.3, 0.3], [0.5, 0.25, 0.25]]], "targets": [[1, 2]]}
MULTI = {"predictions": [[[0.5, 0.25], [0.5, 0.75]]], "params": {"mode": "multiclass"}}


def lengths(*target_lengths: int, **params: Any) -> dict[str, Any]:
    return {**FRAMES, "params": {"target_lengths": list(target_lengths), **params}}


# fmt: off
#: (loss, body, loc of the first error, fragments its msg must contain)
INVALID = [
    case("dice", {"predictions": [[0.5, 0.5, 0.5]], "targets": [[1, 0]]}, ["body", "targets"],
         ["targets", "(1, 2)", "predictions", "(1, 3)"], id="overlap-binary-shape"),
    case("dice", {**MULTI, "targets": [[0, 1, 1]]}, ["body", "targets"],
         ["(1, 3)", "(1, 2, 2)", "(1, 2)", "one-hot", "class map"], id="overlap-multiclass-shape"),
    case("jaccard", {**MULTI, "targets": [[1, 0]], "params": {"mode": "multilabel"}},
         ["body", "targets"], ["(1, 2)", "(1, 2, 2)", "multilabel"], id="overlap-multilabel-shape"),
    case("tversky", {**MULTI, "targets": [[0, 0.5]]}, ["body", "targets", 0, 1],
         ["targets[0][1]", "0.5", "integer"], id="overlap-class-map-not-integer"),
    case("dice", {**MULTI, "targets": [[0, 2]]}, ["body", "targets", 0, 1],
         ["targets[0][1] = 2", "[0, 2)"], id="overlap-class-map-out-of-range"),
    case("dice", {**MULTI, "targets": [[-1, 0]]}, ["body", "targets", 0, 0],
         ["targets[0][0] = -1", "[0, 2)"], id="overlap-class-map-negative"),
    case("dice", {**MULTI, "targets": [[0, 1]],
                  "params": {"mode": "multiclass", "class_weight": [1, 1, 1]}},
         ["body", "params", "class_weight"], ["class_weight", "3", "2"],
         id="overlap-class-weight-length"),
    case("dice", {"predictions": [[0.5, 1.5]], "targets": [[1, 0]]}, ["body", "predictions", 0, 1],
         ["predictions[0][1] = 1.5", "from_logits"], id="overlap-probability-above-1"),
    case("jaccard", {"predictions": [[0.5, 0.5]], "targets": [[1, -0.5]]},
         ["body", "targets", 0, 1], ["targets[0][1] = -0.5", "[0, 1]"], id="overlap-target-range"),
    case("dice", {"predictions": [[[[0.5, 0.5], [0.5, 0.5]]]], "targets": [[[[1, 0], [0, 2]]]],
                  "params": {"mode": "multilabel"}},
         ["body", "targets", 0, 0, 1, 1], ["targets[0][0][1][1] = 2", "[0, 1]"],
         id="overlap-target-range-2d-spatial"),
    case("dice", {"predictions": [[0.5]], "targets": [[1]], "params": {"mode": "multi"}},
         ["body", "params", "mode"], ["'binary'", "'multilabel'", "'multiclass'", "multi"],
         id="overlap-unknown-mode"),
    case("dice", {"predictions": [[0.5, 0.5]], "targets": [[1, 0]], "mask": [[1, 1]]},
         ["body", "mask"], ["mask", "(1, 2)", "(1, 1)"], id="overlap-mask-shape"),
    case("dice", {"predictions": [0.5, 0.5], "targets": [0, 1], "params": {"mode": "multiclass"}},
         ["body", "predictions"], ["(2,)", "class axis"], id="overlap-multiclass-no-class-axis"),
    case("dice", {"predictions": [[0.5]], "targets": [[1]], "params": {"smooth": -1}},
         ["body", "params", "smooth"], ["smooth", "-1"], id="overlap-negative-smooth"),
    case("jaccard", {"predictions": [[0.5]], "targets": [[1]], "params": {"eps": 0.5}},
         ["body", "params", "eps"], ["eps", "0.5"], id="overlap-eps-0.5"),
    case("tversky", {"predictions": [[0.5]], "targets": [[1]], "params": {"gamma": 0}},
         ["body", "params", "gamma"], ["gamma", "greater than 0"], id="tversky-gamma-0"),
    case("tversky", {"predictions": [[0.5]], "targets": [[1]], "params": {"alpha": -0.1}},
         ["body", "params", "alpha"], ["alpha", "-0.1"], id="tversky-negative-alpha"),
    case("tversky", {"predictions": [[0.5]], "targets": [[1]], "params": {"squared_pred": True}},
         ["body", "params", "squared_pred"], ["squared_pred", "allowed"],
         id="tversky-has-no-squared-pred"),
    case("box_iou", {"predictions": [[0, 0, 1, 1, 1]], "targets": [[0, 0, 1, 1, 1]]},
         ["body", "predictions"], ["(1, 5)", "4"], id="box-last-axis-5"),
    case("box_iou", {"predictions": [0, 0, 1, 1], "targets": [0, 0, 1, 1]},
         ["body", "predictions"], ["(4,)", "(N, ..., 4)"], id="box-one-box-without-n"),
    case("box_iou", {"predictions": [[0, 0, 1, 1]], "targets": [[0, 0, 1, 1], [0, 0, 1, 1]]},
         ["body", "targets"], ["(2, 4)", "(1, 4)"], id="box-targets-shape"),
    case("box_iou", {"predictions": [[0, 0, 2, 2], [3, 0, 1, 2]], "targets": [[0, 0, 1, 1]] * 2},
         ["body", "predictions", 1], ["predictions[1]", "inverted", "x2 < x1"],
         id="box-inverted-prediction-x"),
    case("box_iou", {"predictions": [[0, 0, 1, 1]], "targets": [[0, 2, 1, 1]]},
         ["body", "targets", 0], ["targets[0]", "inverted", "y2 < y1"], id="box-inverted-target-y"),
    case("box_iou", {"predictions": [[[0, 0, 1, 1]], [[0, 0, 1, 1]], [[1, 1, 0, 0]]],
                     "targets": [[[0, 0, 1, 1]]] * 3},
         ["body", "predictions", 2, 0], ["predictions[2][0]", "inverted"], id="box-inverted-n-k"),
    case("box_iou", {"predictions": [[0, 0, -1, 1]], "targets": [[0, 0, 1, 1]],
                     "params": {"box_format": "xywh"}},
         ["body", "predictions", 0], ["predictions[0]", "width"], id="box-xywh-negative-width"),
    case("box_iou", {"predictions": [[0, 0, 1, 1]], "targets": [[0, 0, 1, -2]],
                     "params": {"box_format": "cxcywh"}},
         ["body", "targets", 0], ["targets[0]", "height"], id="box-cxcywh-negative-height"),
    case("box_iou", {"predictions": [[0, 0, 1, 1]], "targets": [[0, 0, 1, 1]],
                     "params": {"variant": "eiou"}},
         ["body", "params", "variant"], ["'iou'", "'giou'", "'diou'", "'ciou'", "eiou"],
         id="box-unknown-variant"),
    case("box_iou", {"predictions": [[0, 0, 1, 1]], "targets": [[0, 0, 1, 1]],
                     "params": {"box_format": "yxyx"}},
         ["body", "params", "box_format"], ["'xyxy'", "'xywh'", "'cxcywh'", "yxyx"],
         id="box-unknown-format"),
    case("box_iou", {"predictions": [[[0, 0, 1, 1]] * 3] * 2, "targets": [[[0, 0, 1, 1]] * 3] * 2,
                     "mask": [1, 1]},
         ["body", "mask"], ["mask", "(2,)", "(2, 3)"], id="box-mask-shape"),
    case("sequence_cross_entropy", {"predictions": [[0.5, 0.5]], "targets": [[1]]},
         ["body", "predictions"], ["(1, 2)", "(N, T, C)"], id="seq-ce-predictions-2d"),
    case("sequence_cross_entropy", {**SEQ, "targets": [[1]]}, ["body", "targets"],
         ["(1, 1)", "(1, 2, 2)", "(1, 2)"], id="seq-ce-targets-shape"),
    case("sequence_cross_entropy", {**SEQ, "targets": [[0, 2]]}, ["body", "targets", 0, 1],
         ["targets[0][1] = 2", "[0, 2)", "ignore_index"], id="seq-ce-label-out-of-range"),
    case("sequence_cross_entropy", {**SEQ, "targets": [[-1, 0]]}, ["body", "targets", 0, 0],
         ["targets[0][0] = -1"], id="seq-ce-negative-label"),
    case("sequence_cross_entropy", {**SEQ, "targets": [[0.5, 0]]}, ["body", "targets", 0, 0],
         ["targets[0][0]", "0.5", "integer"], id="seq-ce-label-not-integer"),
    case("sequence_cross_entropy", {**SEQ, "mask": [1, 1]}, ["body", "mask"],
         ["mask", "(2,)", "(1, 2)"], id="seq-ce-mask-shape"),
    case("sequence_cross_entropy", {**SEQ, "mask": [[1, 2]]}, ["body", "mask", 0, 1],
         ["mask[0][1]", "[0, 1]"], id="seq-ce-mask-range"),
    case("sequence_cross_entropy", {**SEQ, "params": {"label_smoothing": 1}},
         ["body", "params", "label_smoothing"], ["label_smoothing"], id="seq-ce-smoothing-1"),
    case("ctc", {**FRAMES}, ["body", "params", "target_lengths"],
         ["params.target_lengths", "required"], id="ctc-params-omitted"),
    case("ctc", {**FRAMES, "params": {}}, ["body", "params", "target_lengths"],
         ["params.target_lengths", "required"], id="ctc-params-empty"),
    case("ctc", {**FRAMES, "params": None}, ["body", "params", "target_lengths"],
         ["params.target_lengths", "required"], id="ctc-params-null"),
    case("ctc", lengths(1, 1), ["body", "params", "target_lengths"],
         ["target_lengths", "2", "1 sample"], id="ctc-target-lengths-count"),
    case("ctc", lengths(3), ["body", "params", "target_lengths", 0],
         ["target_lengths[0] = 3", "[0, 2]"], id="ctc-target-length-above-s"),
    case("ctc", lengths(-1), ["body", "params", "target_lengths", 0],
         ["target_lengths", "-1"], id="ctc-target-length-negative"),
    case("ctc", lengths(1, input_lengths=[3]), ["body", "params", "input_lengths", 0],
         ["input_lengths[0] = 3", "[1, 2]"], id="ctc-input-length-above-t"),
    case("ctc", lengths(1, input_lengths=[0]), ["body", "params", "input_lengths", 0],
         ["input_lengths[0]", "greater than or equal to 1", "got 0"], id="ctc-input-length-0"),
    case("ctc", lengths(1, input_lengths=[1, 1]), ["body", "params", "input_lengths"],
         ["input_lengths", "2", "1 sample"], id="ctc-input-lengths-count"),
    case("ctc", {**lengths(2), "targets": [[1, 0]]}, ["body", "targets", 0, 1],
         ["targets[0][1] = 0", "blank"], id="ctc-label-is-blank"),
    case("ctc", {**lengths(2, blank=2), "targets": [[1, 2]]}, ["body", "targets", 0, 1],
         ["targets[0][1] = 2", "blank"], id="ctc-label-is-blank-2"),
    case("ctc", {**lengths(2), "targets": [[1, 3]]}, ["body", "targets", 0, 1],
         ["targets[0][1] = 3", "[0, 3)"], id="ctc-label-out-of-range"),
    case("ctc", {**lengths(1), "targets": [[1.5, 1]]}, ["body", "targets", 0, 0],
         ["targets[0][0]", "1.5"], id="ctc-label-not-integer"),
    case("ctc", lengths(1, blank=3), ["body", "params", "blank"], ["blank", "3", "[0, 3)"],
         id="ctc-blank-out-of-range"),
    case("ctc", {**lengths(1), "predictions": [[0.5, 0.5]]}, ["body", "predictions"],
         ["(1, 2)", "(N, T, C)"], id="ctc-predictions-2d"),
    case("ctc", {**lengths(1), "targets": [1, 2]}, ["body", "targets"], ["(2,)", "(1, S)"],
         id="ctc-targets-1d"),
    case("ctc", {**lengths(1), "mask": [[1, 1]]}, ["body", "mask"], ["(1, 2)", "(1,)"],
         id="ctc-mask-shape"),
    case("ctc", {**lengths(1), "predictions": [[[0.4, 0.3, 1.3], [0.5, 0.25, 0.25]]]},
         ["body", "predictions", 0, 0, 2], ["predictions[0][0][2] = 1.3", "from_logits"],
         id="ctc-probability-above-1"),
    case("ctc", {**lengths(1), "params": {"target_lengths": [1], "reduction": "mean"}},
         ["body", "params", "reduction"], ["reduction", "allowed"], id="ctc-unknown-param"),
]
# fmt: on


@pytest.mark.parametrize(("loss", "body", "loc", "fragments"), INVALID)
def test_invalid_request_is_422_naming_the_problem(
    client: TestClient, loss: str, body: Any, loc: list[str | int], fragments: list[str]
) -> None:
    assert_names_the_problem(post(client, loss, body), loc, fragments)


@pytest.mark.parametrize("names", [[0], [1], [0, 2]], ids=lambda names: f"samples-{names}")
def test_infeasible_ctc_samples_are_a_422_naming_each_of_them(
    client: TestClient, names: list[int]
) -> None:
    """T = 2 frames: [1, 1] needs 3 (a blank between the repeat), [1, 2] needs 2. The message
    names every infeasible sample and no feasible one; zero_infinity scores them 0 instead."""
    targets = [[1, 1] if n in names else [1, 2] for n in range(3)]
    body = {
        "predictions": [FRAMES["predictions"][0]] * 3,
        "targets": targets,
        "params": {"target_lengths": [2, 2, 2]},
    }
    problem = assert_problem(post(client, "ctc", body), 422)
    first = problem["errors"][0]
    assert first["loc"][:2] == ["body", "targets"]
    named = {int(n) for n in re.findall(r"\d+", first["msg"].split("cannot")[0])}
    assert named == set(names), first["msg"]
    assert "zero_infinity" in first["msg"]
    body["params"]["zero_infinity"] = True
    result = post_loss(client, "ctc", body)
    for n in names:
        assert result["per_sample"][n] == 0
        assert np.all(np.asarray(result["gradient"][n]) == 0)
