"""The overlap (dice, jaccard, tversky), box (box_iou) and sequence (sequence_cross_entropy, ctc)
losses through POST /v1/losses/{name}, checked against API.md, LOSSES.md and issue 4's
decisions: hand-computed values and gradients, every layout and mode, extras, empty classes,
logits against their probabilities and logits of +-1e4. More on boxes is in
test_structured_boxes.py, every 422 in test_structured_errors.py.

"By hand" means LOSSES.md's formula with API.md's conventions (w_e = sample_weight[i] x
class_weight[c] x mask_e; cost = sum / weight_sum; gradient = w_e / W x dl_e/dp) on numbers
chosen so the arithmetic is exact, a fraction or a log. Tables are data (``fmt: off``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from tests.api.helpers import (
    assert_finite,
    post_loss,
    probabilities_of,
)

LN2, LN3 = math.log(2.0), math.log(3.0)
EPS = 1e-7  # LOSSES.md's default eps
#: One row of a parametrised table (every loss of issue 4 is registered now: no skip).
case = pytest.param


def check(result: dict[str, Any], expected: dict[str, Any], rtol: float = 1e-12) -> None:
    """Every expected key to ``rtol`` (shapes exact); ``extras`` key by key."""

    def close(actual: Any, wanted: Any) -> None:
        np.testing.assert_allclose(
            np.asarray(actual, dtype=float),
            np.asarray(wanted, dtype=float),
            rtol=rtol,
            atol=1e-15,
            strict=True,
        )

    for key, value in expected.items():
        if key == "extras":
            if "perplexity" in value and "log_perplexity" not in value:
                # The service reports both: log_perplexity = sum / weight_sum (README).
                value = {**value, "log_perplexity": math.log(value["perplexity"])}
            assert set(result["extras"]) == set(value)
            for extra, number in value.items():
                close(result["extras"][extra], number)
        elif isinstance(value, str):
            assert result[key] == value, key
        else:
            close(result[key], value)


# --- hand-computed results -------------------------------------------------------------------

# fmt: off
# Binary overlap, one class: q = [0.5, 1, 0, 0.5], y = [1, 1, 0, 0]: I = 1.5, P = 2, G = 2,
# FP = 0.5, FN = 0.5, s = 1. Dice 1 - 4/5; Jaccard 1 - 2.5/3.5; Tversky 1 - 2.5/3.
Q, Y = [0.5, 1, 0, 0.5], [1, 1, 0, 0]
# dl/dq = -2y/D + (2I + s)/D^2 with D = 5: y = 1: -0.4 + 0.16; y = 0: 0.16 (W = 1).
DICE = {"per_sample": [0.2], "cost": 0.2, "sum": 0.2, "weight_sum": 1,
        "extras": {"per_class": [0.2]}}
DICE_GRADIENT = [-0.24, -0.24, 0.16, 0.16]
# Multilabel, 2 samples x 2 classes, sample_weight [1, 2], mask [[1, 0.5], [1, 1]]. Dice per
# (n, c): (0, 0) I 1.5 P 1.5 G 2 -> 1/9; (0, 1) I 0 P 0.5 G 0 -> 1/3; (1, 0) empty -> 0;
# (1, 1) I 0 P 1 G 1 -> 2/3. per_sample [(1/9 + 0.5/3)/1.5, 2/3 / 2]; sum 5/18 + 2 x 1/3;
# W = 1.5 + 2 x 2; per_class [(1/9)/3, (0.5/3 + 2 x 2/3)/2.5]. Gradient -2y/D + (2I+s)/D^2
# times s_i m_e / W: D = 4.5, 1.5, 1, 3 for the four pairs.
MULTILABEL = {"predictions": [[[0.5, 1], [0, 0.5]], [[0, 0], [1, 0]]],
              "targets": [[[1, 1], [0, 0]], [[0, 0], [0, 1]]],
              "sample_weight": [1, 2], "mask": [[1, 0.5], [1, 1]],
              "params": {"mode": "multilabel"}}
W_ML = 5.5
MULTILABEL_RESULT = {
    "per_sample": [5 / 27, 1 / 3], "sum": 29 / 18, "weight_sum": W_ML, "cost": 29 / 18 / W_ML,
    "extras": {"per_class": [1 / 27, 0.6]},
    "gradient": [[[-20 / 81 / W_ML] * 2, [0.5 * 4 / 9 / W_ML] * 2],
                 [[2 / W_ML] * 2, [2 / 9 / W_ML, 2 * -5 / 9 / W_ML]]]}
# Multiclass (1, 2, 2) with the class map [0, 1]: class 0 q [0.5, 0.25] y [1, 0] -> I 0.5,
# P 0.75, G 1: 1 - 2/2.75 = 3/11; class 1 q [0.5, 0.75] y [0, 1] -> 1 - 2.5/3.25 = 3/13.
MULTICLASS = {"predictions": [[[0.5, 0.25], [0.5, 0.75]]], "targets": [[0, 1]],
              "params": {"mode": "multiclass"}}
ONE_HOT = [[[1, 0], [0, 1]]]
# Boxes: p = [0, 0, 2, 2], t = [1, 1, 3, 3]: A 1, U 7, IoU 1/(7 + eps); enclosing box 3 x 3,
# centres (1, 1) and (2, 2): rho^2 = 2, c^2 = 18. d(1 - IoU)/dx1 = -2/(U+eps)^2 (A does not
# move, area_p does by -2); d/dx2 = -((U+eps) - 1)/(U+eps)^2 (A and area_p both move).
# GIoU adds d[(E-U)/(E+eps)]: x1: E' = -3, U' = -2 -> -(3+eps)/(9+eps)^2; x2: -1/(9+eps).
BOX = {"predictions": [[0, 0, 2, 2]], "targets": [[1, 1, 3, 3]]}
IOU = 1 - 1 / (7 + EPS)
G_X1, G_X2 = -2 / (7 + EPS) ** 2, -(6 + EPS) / (7 + EPS) ** 2
E_X1, E_X2 = -(3 + EPS) / (9 + EPS) ** 2, -1 / (9 + EPS)
# CIoU: p = [0, 0, 2, 1] (2 x 1), t = [0, 0, 1, 1]: A 1, U 2; centres (1, .5), (.5, .5):
# rho^2 = 1/4, E = p, c^2 = 5; v = 4/pi^2 (atan 1 - atan 2)^2, alpha = v / (1 - IoU + v + eps).
CIOU_IOU = 1 / (2 + EPS)
CIOU_V = 4 / math.pi**2 * (math.atan(1.0) - math.atan(2.0)) ** 2
CIOU = 1 - CIOU_IOU + 0.25 / (5 + EPS) + CIOU_V**2 / (1 - CIOU_IOU + CIOU_V + EPS)
# Sequence CE, logits rows: [0, ln 3] -> [1/4, 3/4]; [0, 0] -> [1/2, 1/2]; [ln 3, 0] -> [3/4,
# 1/4]. Sample 0: targets [1, 0, ignored] -> [ln 4/3, ln 2, -]; sample 1: [0, 0, 1 masked] ->
# [ln 4/3, ln 4, -]. mask [[1, .5, 1], [1, 1, 0]], sample_weight [2, 1]: V = [1.5, 2];
# sum = 2 (ln 4/3 + ln 2 / 2) + ln 4/3 + ln 4 = 3 ln 8/3; W = 5. dl/dx = q - y, times w/W.
SEQUENCE = {"predictions": [[[0, LN3], [0, 0], [LN3, 0]], [[LN3, 0], [0, LN3], [0, 0]]],
            "targets": [[1, 0, -100], [0, 0, 1]], "mask": [[1, 0.5, 1], [1, 1, 0]],
            "sample_weight": [2, 1], "params": {"from_logits": True}}
SEQUENCE_GRADIENT = [[[0.1, -0.1], [-0.1, 0.1], [0, 0]], [[-0.05, 0.05], [-0.15, 0.15], [0, 0]]]
# CTC, T = 2, C = 2, blank 0, target [1]: alignments (1,0), (0,1), (1,1): p = .6 x .5 + .4 x .5
# + .6 x .5 = 0.8. dp/dy = [[y1_1, y1_0 + y1_1], [y0_1, y0_0 + y0_1]] = [[.5, 1], [.6, 1]];
# dl/dy = -dp/dy / p. Logits ln y: occupancies [[.25, .75], [.375, .625]], dl/dx = y - gamma.
CTC_FRAMES = [[0.4, 0.6], [0.5, 0.5]]
CTC_GRADIENT = [[-0.625, -1.25], [-0.75, -1.25]]


def ctc(predictions: Any, targets: Any, lengths: list[int], **params: Any) -> dict[str, Any]:
    return {"predictions": predictions, "targets": targets,
            "params": {"target_lengths": lengths, **params}}


HAND_COMPUTED = [
    case("dice", {"predictions": [Q], "targets": [Y]}, {**DICE, "gradient": [DICE_GRADIENT]},
         id="dice-binary-1d"),
    case("dice", {"predictions": [[Q]], "targets": [[Y]]},
         {**DICE, "gradient": [[DICE_GRADIENT]]}, id="dice-binary-n-1-d"),
    case("dice", {"predictions": [[Q[:2], Q[2:]]], "targets": [[Y[:2], Y[2:]]]},
         {**DICE, "gradient": [[DICE_GRADIENT[:2], DICE_GRADIENT[2:]]]}, id="dice-binary-2d"),
    case("dice", {"predictions": np.reshape(Q, (1, 1, 2, 1, 2)).tolist(),
                  "targets": np.reshape(Y, (1, 1, 2, 1, 2)).tolist()},
         {**DICE, "gradient": np.reshape(DICE_GRADIENT, (1, 1, 2, 1, 2)).tolist()},
         id="dice-binary-3d-volume"),
    case("dice", {"predictions": [Q], "targets": [Y], "params": {"squared_pred": True}},
         # P = sum q^2 = 1.5, D = 4.5: 1 - 4/4.5; dl/dq = -2y/4.5 + 4/4.5^2 x 2q.
         {"cost": 1 / 9, "gradient": [[-20 / 81, -4 / 81, 0, 16 / 81]]}, id="dice-squared-pred"),
    case("jaccard", {"predictions": [Q], "targets": [Y]},
         # J = 3.5, I + s = 2.5: dl/dq = -(y J - (I + s)(1 - y)) / J^2.
         {"cost": 2 / 7, "extras": {"per_class": [2 / 7]},
          "gradient": [[-2 / 7, -2 / 7, 10 / 49, 10 / 49]]}, id="jaccard-binary"),
    case("iou", {"predictions": [Q], "targets": [Y]}, {"loss": "jaccard", "cost": 2 / 7},
         id="iou-alias"),
    case("tversky", {"predictions": [Q], "targets": [Y]},
         # D = I + FP/2 + FN/2 + s = 3, dD/dq = 1/2: dl/dq = -(y D - 2.5/2) / 9.
         {"cost": 1 / 6, "gradient": [[-7 / 36, -7 / 36, 5 / 36, 5 / 36]]}, id="tversky-default"),
    case("tversky", {"predictions": [Q], "targets": [Y],
                     "params": {"alpha": 0.3, "beta": 0.7, "gamma": 2}},
         # D = 1.5 + .15 + .35 + 1 = 3, T = 2.5/3, l = (1/6)^2; dD/dq = 0.3;
         # dl/dq = -2 (1/6) (3y - 0.75)/9.
         {"cost": 1 / 36, "gradient": [[-1 / 12, -1 / 12, 1 / 36, 1 / 36]]},
         id="focal-tversky"),
    case("dice", MULTILABEL, MULTILABEL_RESULT, id="dice-multilabel-mask-weights-per-class"),
    case("dice", {**MULTILABEL, "sample_weight": None, "mask": None,
                  "params": {"mode": "multilabel", "class_weight": [3, 1]}},
         # class_weight multiplies w_e: sample 0 (3/9 + 1/3)/4, sample 1 (0 + 2/3)/4.
         {"per_sample": [1 / 6, 1 / 6], "weight_sum": 8, "cost": 1 / 6,
          "extras": {"per_class": [1 / 18, 1 / 2]}}, id="dice-multilabel-class-weight"),
    case("dice", MULTICLASS,
         {"per_sample": [(3 / 11 + 3 / 13) / 2], "weight_sum": 2,
          "extras": {"per_class": [3 / 11, 3 / 13]}}, id="dice-multiclass-class-map"),
    case("dice", {**MULTICLASS, "targets": ONE_HOT},
         {"per_sample": [(3 / 11 + 3 / 13) / 2], "extras": {"per_class": [3 / 11, 3 / 13]}},
         id="dice-multiclass-one-hot"),
    case("dice", {**MULTICLASS, "params": {"mode": "multiclass", "include_background": False}},
         # Class 0 weighs 0; its per_class is 0.0 like a per_sample with no weight (API.md).
         {"cost": 3 / 13, "weight_sum": 1, "extras": {"per_class": [0.0, 3 / 13]}},
         id="dice-multiclass-without-background"),
    case("dice", {**MULTICLASS, "predictions": [[[0, 0], [0, LN3]]],
                  "params": {"mode": "multiclass", "from_logits": True}},
         # Softmax over axis 1: position 0 [1/2, 1/2], position 1 [1/4, 3/4]: as above.
         {"per_sample": [(3 / 11 + 3 / 13) / 2]}, id="dice-multiclass-softmax"),
    case("tversky", {"predictions": [[0, LN3]], "targets": [[1, 0]],
                     "params": {"from_logits": True}},
         # Sigmoid: q = [1/2, 3/4]; I .5, FP .75, FN .5: 1 - 1.5/(.5 + .375 + .25 + 1).
         {"cost": 1 - 1.5 / 2.125}, id="tversky-binary-sigmoid"),
    case("box_iou", BOX, {"cost": IOU, "gradient": [[G_X1, G_X1, G_X2, G_X2]]}, id="box-iou"),
    case("box_iou", {**BOX, "params": {"variant": "giou"}},
         {"cost": IOU + 2 / (9 + EPS),
          "gradient": [[G_X1 + E_X1, G_X1 + E_X1, G_X2 + E_X2, G_X2 + E_X2]]}, id="box-giou"),
    case("box_iou", {**BOX, "params": {"variant": "diou"}}, {"cost": IOU + 2 / (18 + EPS)},
         id="box-diou"),
    case("box_iou", {"predictions": [[0, 0, 2, 1]], "targets": [[0, 0, 1, 1]],
                     "params": {"variant": "ciou"}}, {"cost": CIOU}, id="box-ciou"),
    case("box_iou", {"predictions": [[0, 0, 1, 1]], "targets": [[2, 2, 3, 3]]},
         # Disjoint: A = 0, IoU 0, and A stays 0 nearby: loss 1, gradient 0.
         {"cost": 1, "gradient": [[0, 0, 0, 0]]}, id="box-disjoint-iou"),
    case("box_iou", {"predictions": [[0, 0, 1, 1]], "targets": [[2, 2, 3, 3]],
                     "params": {"variant": "giou"}},
         # E = 9, U = 2: 1 + 7/(9 + eps) > 1.
         {"cost": 1 + 7 / (9 + EPS)}, id="box-disjoint-giou"),
    case("box_iou", {"predictions": [[[0, 0, 2, 2], [0, 0, 1, 1]], [BOX["predictions"][0],
                                      [0, 0, 1, 1]]],
                     "targets": [[[0, 0, 2, 2], [2, 2, 3, 3]], [[1, 1, 3, 3], [0, 0, 2, 2]]],
                     "mask": [[1, 0.5], [0, 1]], "sample_weight": [2, 1]},
         # (N, K, 4) = (2, 2, 4), grid (2, 2): losses [[1 - 4/(4+eps), 1], [IOU, 1 - 1/(4+eps)]].
         {"per_sample": [(1 - 4 / (4 + EPS) + 0.5) / 1.5, 1 - 1 / (4 + EPS)],
          "sum": 2 * (1 - 4 / (4 + EPS) + 0.5) + 1 - 1 / (4 + EPS), "weight_sum": 4},
         id="box-grid-mask-sample-weight"),
    case("sequence_cross_entropy", {"predictions": [[[0.5, 0.5], [0.25, 0.75]]],
                                     "targets": [[1, 1]]},
         # [ln 2, ln 4/3]; dl/dp = -1/p_t / 2; perplexity exp(mean) = sqrt(8/3).
         {"per_sample": [math.log(8 / 3) / 2], "gradient": [[[0, -1], [0, -2 / 3]]],
          "extras": {"perplexity": math.sqrt(8 / 3), "tokens": 2}}, id="seq-ce-probabilities"),
    case("sequence_cross_entropy", {"predictions": [[[0.5, 0.5], [0.25, 0.75]]],
                                     "targets": [[1, 1]], "params": {"label_smoothing": 0.5}},
         # y' = y/2 + 1/4 = [1/4, 3/4]: [ln 2, -(ln(1/4)/4 + 3 ln(3/4)/4)]; -y'/p / 2.
         {"per_sample": [(LN2 - math.log(0.25) / 4 - 0.75 * math.log(0.75)) / 2],
          "gradient": [[[-0.25, -0.75], [-0.5, -0.5]]]}, id="seq-ce-label-smoothing"),
    case("sequence_cross_entropy", SEQUENCE,
         {"per_sample": [(math.log(4 / 3) + LN2 / 2) / 1.5, (math.log(4 / 3) + math.log(4)) / 2],
          "sum": 3 * math.log(8 / 3), "weight_sum": 5, "cost": 0.6 * math.log(8 / 3),
          "gradient": SEQUENCE_GRADIENT,
          # tokens = sum of mask x (target != ignore_index) = 1.5 + 2, without sample_weight.
          "extras": {"perplexity": (8 / 3) ** 0.6, "tokens": 3.5}},
         id="seq-ce-logits-mask-ignore-weights"),
    case("sequence_cross_entropy", {**SEQUENCE, "reduction": "sum"},
         # cost = sum; gradient w_e dl/dx (x W = 5); perplexity still exp(sum / W).
         {"cost": 3 * math.log(8 / 3), "gradient": (5 * np.array(SEQUENCE_GRADIENT)).tolist(),
          "extras": {"perplexity": (8 / 3) ** 0.6, "tokens": 3.5}}, id="seq-ce-reduction-sum"),
    case("sequence_cross_entropy", {"predictions": [[[0.5, 0.5], [0.25, 0.75]]],
                                    "targets": [[7, 1]], "params": {"ignore_index": 7}},
         {"cost": math.log(4 / 3), "weight_sum": 1, "gradient": [[[0, 0], [0, -4 / 3]]],
          "extras": {"perplexity": 4 / 3, "tokens": 1}}, id="seq-ce-custom-ignore-index"),
    case("sequence_cross_entropy", {"predictions": [[[0.5, 0.5]]], "targets": [[-100]]},
         # Nothing counts: cost 0 (API.md), perplexity exp(0) = 1, tokens 0.
         {"cost": 0, "weight_sum": 0, "gradient": [[[0, 0]]],
          "extras": {"perplexity": 1, "tokens": 0}}, id="seq-ce-all-ignored"),
    case("ctc", ctc([[[0.3, 0.7]]], [[1]], [1]),
         {"cost": -math.log(0.7), "gradient": [[[0, -1 / 0.7]]]}, id="ctc-one-frame"),
    case("ctc", ctc([CTC_FRAMES], [[1]], [1]),
         {"cost": -math.log(0.8), "gradient": [CTC_GRADIENT]}, id="ctc-two-frames"),
    case("ctc", ctc(np.log([CTC_FRAMES]).tolist(), [[1]], [1], from_logits=True),
         {"cost": -math.log(0.8), "gradient": [[[0.15, -0.15], [0.125, -0.125]]]},
         id="ctc-logits"),
    case("ctc", ctc([[[0.7, 0.3]]], [[0]], [1], blank=1),
         {"cost": -math.log(0.7), "gradient": [[[-1 / 0.7, 0]]]}, id="ctc-blank-last"),
    case("ctc", ctc([[[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]]], [[2]], [1], blank=1),
         # Blank in the middle: (2,b) .5 x .6 + (b,2) .3 x .3 + (2,2) .5 x .3 = .54.
         {"cost": -math.log(0.54),
          "gradient": [[[0, -0.3 / 0.54, -0.9 / 0.54], [0, -0.5 / 0.54, -0.8 / 0.54]]]},
         id="ctc-blank-middle"),
    case("ctc", ctc([CTC_FRAMES], [[1]], [0], length_normalized=True),
         # Empty target: blanks only, .4 x .5; divided by max(0, 1) = 1.
         {"cost": -math.log(0.2), "gradient": [[[-2.5, 0], [-2, 0]]]}, id="ctc-empty-target"),
    case("ctc", ctc([[[0.2, 0.5, 0.3], [0.1, 0.3, 0.6]]], [[1, 2]], [2], length_normalized=True),
         # One alignment (1, 2): .5 x .6; divided by the target length 2.
         {"cost": -math.log(0.3) / 2, "gradient": [[[0, -1, 0], [0, 0, -5 / 6]]]},
         id="ctc-length-normalized"),
    case("ctc", ctc([[[0.4, 0.6], [0.5, 0.5], [0.2, 0.8]]], [[1, 1]], [2]),
         # A repeat needs a blank between: only (1, b, 1), .6 x .5 x .8.
         {"cost": -math.log(0.24)}, id="ctc-repeat"),
    case("ctc", ctc([CTC_FRAMES], [[1]], [1], input_lengths=[1]),
         # Only frame 0 is read: -ln .6; frame 1 gets gradient 0.
         {"cost": -math.log(0.6), "gradient": [[[0, -1 / 0.6], [0, 0]]]}, id="ctc-input-length"),
    case("ctc", ctc([CTC_FRAMES, CTC_FRAMES], [[1, 1], [1, 9]], [2, 1], zero_infinity=True),
         # Sample 0 needs 3 frames (a repeat): 0 and gradient 0; sample 1's padding 9 ignored.
         {"per_sample": [0, -math.log(0.8)], "weight_sum": 2, "cost": -math.log(0.8) / 2,
          "gradient": [[[0, 0], [0, 0]], (np.array(CTC_GRADIENT) / 2).tolist()]},
         id="ctc-zero-infinity"),
    case("ctc", {**ctc([CTC_FRAMES, CTC_FRAMES], [[1], [1]], [1, 0]),
                 "sample_weight": [1, 3], "mask": [1, 0.5]},
         # Mask (N,): W = 1 + 3 x 0.5; sum = -ln .8 - 1.5 ln .2.
         {"per_sample": [-math.log(0.8), -math.log(0.2)], "weight_sum": 2.5,
          "sum": -math.log(0.8) - 1.5 * math.log(0.2)}, id="ctc-mask-sample-weight"),
]
# fmt: on


@pytest.mark.parametrize(("name", "body", "expected"), HAND_COMPUTED)
def test_hand_computed_results(
    client: TestClient, name: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    result = post_loss(client, name, body)
    check(result, expected)
    assert_finite(result)


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky"])
def test_a_class_map_and_its_one_hot_give_identical_responses(
    client: TestClient, name: str
) -> None:
    by_map = post_loss(client, name, MULTICLASS)
    assert post_loss(client, name, {**MULTICLASS, "targets": ONE_HOT}) == by_map


# fmt: off
#: An empty class (nothing predicted, nothing true) with smooth 1 is 1 - s/s = 0, with smooth 0
#: 1 - 0/max(0, eps) = 1; never 0/0. Gradients at q = 0 (W = 1): smooth 1 gives
#: d/dq [1 - 1/(k P + 1)] = k with k = 1 (Dice: (2I + s)/D^2 = 1; Jaccard: 1) or alpha (Tversky);
#: smooth 0 keeps the loss at 1 while I = 0: 0.
EMPTY_CLASS = [
    case(name, smooth, loss, slope, id=f"{name}-smooth-{smooth}")
    for name, smooth, loss, slope in [
        ("dice", 1.0, 0.0, 1.0), ("dice", 0.0, 1.0, 0.0),
        ("jaccard", 1.0, 0.0, 1.0), ("jaccard", 0.0, 1.0, 0.0),
        ("tversky", 1.0, 0.0, 0.5), ("tversky", 0.0, 1.0, 0.0),
    ]
]
# fmt: on


@pytest.mark.parametrize(("name", "smooth", "loss", "slope"), EMPTY_CLASS)
def test_an_empty_class_is_never_0_over_0(
    client: TestClient, name: str, smooth: float, loss: float, slope: float
) -> None:
    body = {"predictions": [[0, 0, 0]], "targets": [[0, 0, 0]], "params": {"smooth": smooth}}
    result = post_loss(client, name, body)
    check(result, {"cost": loss, "per_sample": [loss], "gradient": [[slope] * 3]})
    assert_finite(result)


# fmt: off
#: (loss, logits, targets, params): from_logits against the probabilities LOSSES.md's link gives
#: (sigmoid for binary and multilabel overlap, softmax on axis 1 for multiclass, on the last
#: axis for sequences).
LINKED = [
    case("dice", [[0.3, -1.2, 2.0]], [[1, 0, 1]], {}, id="dice-binary-sigmoid"),
    case("jaccard", [[[0.3, -1.2], [2.0, 0.1]]], [[[1, 0], [0, 1]]], {"mode": "multilabel"},
         id="jaccard-multilabel-sigmoid"),
    case("tversky", [[[0.3, -1.2], [2.0, 0.1], [-0.5, 0.4]]], [[2, 0]],
         {"mode": "multiclass", "alpha": 0.2, "beta": 0.8, "gamma": 1.5},
         id="tversky-multiclass-softmax"),
    case("sequence_cross_entropy", [[[0.3, -1.2, 2.0], [0.1, 0.5, -0.4]]], [[2, 0]],
         {"label_smoothing": 0.1}, id="seq-ce-softmax-last-axis"),
    case("ctc", [[[0.3, -1.2, 2.0], [0.1, 0.5, -0.4], [1.0, 0.2, 0.0]]], [[2, 1]],
         {"target_lengths": [2]}, id="ctc-softmax-last-axis"),
]
# fmt: on


@pytest.mark.parametrize(("name", "logits", "targets", "params"), LINKED)
def test_logits_and_their_probabilities_give_the_same_loss_and_the_chained_gradient(
    client: TestClient, name: str, logits: Any, targets: Any, params: dict[str, Any]
) -> None:
    """The gradient for logits is J^T g with g the gradient for the probabilities (API.md):
    sigmoid J = q(1 - q); softmax J^T g = q (g - sum q g) along the class axis."""
    spec = REGISTRY[name]
    probabilities = probabilities_of(spec, logits, params)
    body = {"predictions": logits, "targets": targets, "params": {**params, "from_logits": True}}
    from_logits = post_loss(client, name, body)
    given_probabilities = post_loss(
        client, name, {**body, "predictions": probabilities.tolist(), "params": params}
    )
    assert from_logits["cost"] == pytest.approx(given_probabilities["cost"], rel=1e-12)
    g = np.asarray(given_probabilities["gradient"])
    if spec.family == "overlap" and params.get("mode") != "multiclass":
        chained = g * probabilities * (1 - probabilities)
    else:
        axis = -1 if spec.family == "sequence" else 1
        chained = probabilities * (g - (probabilities * g).sum(axis=axis, keepdims=True))
    np.testing.assert_allclose(from_logits["gradient"], chained, rtol=1e-9, atol=1e-13)


# --- extreme logits --------------------------------------------------------------------------

# fmt: off
#: Logits of +-1e4 (issue 4: finite everywhere): sigmoid / softmax saturate to exact 0 and 1,
#: the derivatives through them to 0; cross-entropies stay exact through log-sum-exp.
BIG = 1e4
EXTREME = [
    case("dice", {"predictions": [[BIG, -BIG]], "targets": [[1, 0]]}, {},
         # q = [1, 0] = y: 1 - 3/3; the sigmoid's slope q(1 - q) is 0.
         {"cost": 0, "gradient": [[0, 0]]}, id="dice-right"),
    case("dice", {"predictions": [[-BIG, BIG]], "targets": [[1, 0]]}, {},
         # q = [0, 1]: I 0, P 1, G 1: 1 - 1/3.
         {"cost": 2 / 3, "gradient": [[0, 0]]}, id="dice-wrong"),
    case("jaccard", {"predictions": [[[BIG, -BIG], [-BIG, BIG]]], "targets": [[0, 1]]},
         {"mode": "multiclass"}, {"cost": 0, "extras": {"per_class": [0, 0]}},
         id="jaccard-multiclass-right"),
    case("tversky", {"predictions": [[[-BIG, BIG], [BIG, -BIG]]], "targets": [[0, 1]]},
         {"mode": "multiclass"},
         # Every class: I 0, FP 1, FN 1: 1 - 1/(0.5 + 0.5 + 1).
         {"cost": 0.5, "gradient": [[[0, 0], [0, 0]]]}, id="tversky-multiclass-wrong"),
    case("tversky", {"predictions": [[[BIG, -BIG], [-BIG, BIG]]], "targets": [[[0, 1], [1, 0]]]},
         {"mode": "multilabel", "gamma": 0.5},
         # Both classes: I 0, FP 1, FN 1: T = 1/2, (1 - T)^0.5.
         {"cost": 0.5**0.5}, id="tversky-multilabel-focal"),
    case("sequence_cross_entropy", {"predictions": [[[-BIG, BIG], [BIG, -BIG]]],
                                    "targets": [[1, 0]]}, {},
         {"cost": 0, "gradient": [[[0, 0], [0, 0]]], "extras": {"perplexity": 1, "tokens": 2}},
         id="seq-ce-right"),
    case("sequence_cross_entropy", {"predictions": [[[BIG, -BIG], [-BIG, BIG]]],
                                    "targets": [[1, 1]]}, {},
         # Token 0: -log softmax = 2e4, token 1: 0; dl/dx = q - y over W = 2.
         {"cost": BIG, "gradient": [[[0.5, -0.5], [0, 0]]]}, id="seq-ce-wrong"),
    case("ctc", {"predictions": [[[-BIG, BIG]]], "targets": [[1]]}, {"target_lengths": [1]},
         {"cost": 0, "gradient": [[[0, 0]]]}, id="ctc-right"),
    case("ctc", {"predictions": [[[BIG, -BIG], [BIG, -BIG]]], "targets": [[1]]},
         {"target_lengths": [1]},
         # Every alignment holds one label frame at -2e4 (two for (1, 1)): 2e4 - ln 2; the
         # label's occupancy is 1/2 per frame: dl/dx = q - gamma = [1 - 1/2, 0 - 1/2].
         {"cost": 2 * BIG - LN2, "gradient": [[[0.5, -0.5], [0.5, -0.5]]]}, id="ctc-wrong"),
]
# fmt: on


@pytest.mark.parametrize(("name", "body", "params", "expected"), EXTREME)
def test_logits_of_plus_minus_1e4_give_exact_finite_results(
    client: TestClient, name: str, body: dict[str, Any], params: dict, expected: dict[str, Any]
) -> None:
    """rtol 1e-11: a log-space sum of terms near 2e4 carries about 2e4 x 2^-52 = 4e-12 of
    absolute error in its exponent (CTC's occupancies), so 1e-12 would test float64 itself."""
    result = post_loss(client, name, {**body, "params": {**params, "from_logits": True}})
    assert_finite(result)
    check(result, expected, rtol=1e-11)
