"""Issue 4 through POST /v1/losses/{name}: the overlap (dice, jaccard, tversky), box (box_iou)
and sequence (sequence_cross_entropy, ctc) losses, checked against API.md, LOSSES.md and the
issue's decisions: hand-computed values and gradients, every layout and mode, extras, extreme
logits, every 422 and junk params.

"By hand" means LOSSES.md's formula with API.md's conventions (w_e = sample_weight[i] x
class_weight[c] x mask_e; cost = sum / weight_sum; gradient = w_e / W x dl_e/dp) on numbers
chosen so the arithmetic is exact, a fraction or a log. Tables are data (``fmt: off``).
A loss that issue 4 has not registered yet is skipped, naming it, until it is.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY, canonical_name
from tests.test_api import post_loss, probabilities_of, strict_json
from tests.test_errors import (
    EDGE_NUMBERS,
    LABELS,
    LOGITS,
    MASK_VALUES,
    PARAM_CHOICES,
    PARAMS,
    PROBABILITIES,
    WEIGHTS,
    assert_problem,
    post,
)

LN2, LN3 = math.log(2.0), math.log(3.0)
EPS = 1e-7  # LOSSES.md's default eps
STRUCTURED = ["dice", "jaccard", "tversky", "box_iou", "sequence_cross_entropy", "ctc"]


def registered(name: str) -> Any:
    reason = f"{name} is not in REGISTRY yet (issue 4); this runs once it is registered"
    return pytest.mark.skipif(canonical_name(name) is None, reason=reason)


def case(name: str, *values: Any, id: str) -> Any:
    return pytest.param(name, *values, id=id, marks=registered(name))


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


def assert_finite(result: dict[str, Any]) -> None:
    """Every number of a 200 is finite (float() turns orjson's null for NaN into NaN)."""
    values = [result[key] for key in ("cost", "per_sample", "gradient", "sum", "weight_sum")]
    for value in [*values, *result["extras"].values()]:
        assert np.isfinite(np.asarray(value, dtype=float)).all(), result


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


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=registered(name)) for name in ("dice", "jaccard", "tversky")]
)
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


# --- boxes -----------------------------------------------------------------------------------

VARIANTS = ["iou", "giou", "diou", "ciou"]
# No coordinate of a predicted box ties with the target's (a tie is a kink of min / max).
BOXES = {
    "predictions": [[[0.25, 0, 2, 1]], [[1, 1, 4, 3.5]]],
    "targets": [[[0.5, 0.5, 1.5, 2]], [[0, 0, 2, 2]]],
}


def in_format(boxes: Any, box_format: str) -> list[Any]:
    """xyxy boxes in ``box_format`` (exact in binary for these numbers)."""
    b = np.asarray(boxes, dtype=float)
    x1, y1, x2, y2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if box_format == "xyxy":
        return b.tolist()
    if box_format == "xywh":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1).tolist()
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1).tolist()


def chained_to(gradient: Any, box_format: str) -> np.ndarray:
    """d/d(format) from d/d(x1, y1, x2, y2): xywh x2 = x + w; cxcywh x1,2 = cx -+ w/2."""
    g = np.asarray(gradient, dtype=float)
    g1, g2 = g[..., :2], g[..., 2:]
    if box_format == "xywh":
        return np.concatenate([g1 + g2, g2], axis=-1)
    return np.concatenate([g1 + g2, (g2 - g1) / 2], axis=-1)


@pytest.mark.parametrize("box_format", ["xywh", "cxcywh"])
@pytest.mark.parametrize("variant", VARIANTS)
@registered("box_iou")
def test_box_formats_give_the_xyxy_loss_and_the_chained_gradient(
    client: TestClient, variant: str, box_format: str
) -> None:
    xyxy = post_loss(client, "box_iou", {**BOXES, "params": {"variant": variant}})
    converted = {key: in_format(value, box_format) for key, value in BOXES.items()}
    params = {"variant": variant, "box_format": box_format}
    result = post_loss(client, "box_iou", {**converted, "params": params})
    assert result["per_sample"] == pytest.approx(xyxy["per_sample"], rel=1e-12)
    expected = chained_to(xyxy["gradient"], box_format)
    np.testing.assert_allclose(result["gradient"], expected, rtol=1e-12, atol=1e-15)


# fmt: off
#: Zero-area boxes against [0, 0, 2, 2]: A = 0 so IoU = 0 and iou = 1; GIoU's E is the target
#: (E - U = 0); the centres coincide (rho = 0); CIoU: atan2(w, h) of a point or a vertical
#: line differs from the target's pi/4 by pi/4: v = 4/pi^2 (pi/4)^2 = 1/4, alpha v =
#: v^2/(1 + v + eps). Two identical points: U = 0, E = 0, c = 0: every term 0/eps, loss 1.
CIOU_DEGENERATE = 1 + 0.25**2 / (1.25 + EPS)
ZERO_AREA = [
    pytest.param([1, 1, 1, 1], [0, 0, 2, 2], {"iou": 1, "giou": 1, "diou": 1,
                 "ciou": CIOU_DEGENERATE}, id="point-in-box"),
    pytest.param([1, 0, 1, 2], [0, 0, 2, 2], {"iou": 1, "giou": 1, "diou": 1,
                 "ciou": CIOU_DEGENERATE}, id="vertical-line"),
    pytest.param([1, 1, 1, 1], [1, 1, 1, 1], dict.fromkeys(VARIANTS, 1), id="two-same-points"),
]
# fmt: on


@pytest.mark.parametrize("box_format", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize(("predicted", "target", "losses"), ZERO_AREA)
@registered("box_iou")
def test_zero_area_boxes_are_valid_and_finite(
    client: TestClient,
    predicted: list[float],
    target: list[float],
    losses: dict[str, float],
    box_format: str,
) -> None:
    for variant, loss in losses.items():
        params = {"variant": variant, "box_format": box_format}
        boxes = {"predictions": [predicted], "targets": [target]}
        body = {
            **{key: in_format(value, box_format) for key, value in boxes.items()},
            "params": params,
        }
        result = post_loss(client, "box_iou", body)
        assert_finite(result)
        assert result["cost"] == pytest.approx(loss, rel=1e-12), variant


@pytest.mark.parametrize("variant", VARIANTS)
@registered("box_iou")
def test_a_perfect_box_scores_0_with_gradient_0(client: TestClient, variant: str) -> None:
    """Identical boxes: 1 - A/(A + eps), i.e. 0 to within eps / area (LOSSES.md's eps). Each
    coordinate then sits at a kink of |d| / 2 shape (growing the box raises U, shrinking it
    lowers A), which is the loss's minimum: API.md, "at a kink the derivative is 0". The
    service splits tied min / max derivatives evenly (README), which leaves only the eps term
    of the exact derivative: |dIoU/da1| = (h / 2) eps / (A + eps)^2 = 6.25e-9 for this box."""
    box = [[0, 0, 2, 2]]
    body = {"predictions": box, "targets": box, "params": {"variant": variant}}
    result = post_loss(client, "box_iou", body)
    assert result["cost"] == pytest.approx(1 - 4 / (4 + EPS), rel=1e-9, abs=1e-15)
    assert np.abs(result["gradient"]).max() <= 2 / 2 * EPS / 4**2 * (1 + 1e-6)


@registered("box_iou")
def test_ciou_gradient_differentiates_alpha(client: TestClient) -> None:
    """LOSSES.md: the exact derivative, alpha included (torchvision holds alpha constant, which
    would differ from these central differences of the returned cost)."""
    body = {
        "predictions": [[0.25, 0, 2, 1]],
        "targets": [[0.5, 0.5, 1.5, 2]],
        "params": {"variant": "ciou"},
    }
    gradient = np.asarray(post_loss(client, "box_iou", body)["gradient"])[0]
    numeric = []
    for i in range(4):
        costs = []
        for step in (1e-6, -1e-6):
            moved = [list(body["predictions"][0])]
            moved[0][i] += step
            costs.append(post_loss(client, "box_iou", {**body, "predictions": moved})["cost"])
        numeric.append((costs[0] - costs[1]) / 2e-6)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)


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
    problem = assert_problem(post(client, loss, body), 422)
    first = problem["errors"][0]
    assert first["loc"] == loc
    for fragment in fragments:
        assert fragment in first["msg"], f"{fragment!r} not in {first['msg']!r}"


@pytest.mark.parametrize("names", [[0], [1], [0, 2]], ids=lambda names: f"samples-{names}")
@registered("ctc")
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


# --- junk never gets a 5xx -------------------------------------------------------------------

COORDINATES = st.sampled_from([0, 1, 2, -1, 0.5, 1e-300, 1e154, -1e154, 1e308]) | st.floats(-5, 5)
#: Values for the new losses' own params: numbers at the edges, the string choices, booleans,
#: null, and lists (class_weight, CTC lengths) of edge numbers or small integers.
OWN_VALUES = (
    EDGE_NUMBERS
    | PARAM_CHOICES
    | st.booleans()
    | st.none()
    | st.lists(EDGE_NUMBERS, max_size=4)
    | st.lists(st.integers(-1, 4), max_size=4)
)


@st.composite
def structured_requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """One of the six losses with arrays in (mostly) its layout: overlap (N, C, d...) with
    same-shape or class-map targets; boxes (N, K, 4), mostly not inverted; sequences
    (N, T, C) with (N, T) labels or padded (N, S) labels and lengths; a mask over the element
    grid; params empty, the loss's own keys, or any keys."""
    loss = draw(st.sampled_from([name for name in STRUCTURED if name in REGISTRY]))
    n, c, t = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    family = REGISTRY[loss].family
    own = st.dictionaries(
        st.sampled_from(sorted(REGISTRY[loss].params.model_fields)), OWN_VALUES, max_size=3
    )
    params = draw(st.just({}) | own | PARAMS)
    mostly = draw(st.integers(0, 3)) > 0  # mostly well-formed, sometimes anything
    values = draw(st.sampled_from([PROBABILITIES, LOGITS]))
    labels = st.integers(0, c - 1) if mostly else LABELS
    if family == "overlap":
        spatial = draw(st.sampled_from([(), (2,), (2, 1), (1, 2, 1)]))
        shape, grid = (n, c, *spatial), (n, c)
        target_shape = draw(st.sampled_from([shape, (n, *spatial)]))
        labels = labels if target_shape != shape else st.sampled_from([0, 1]) | LABELS
    elif family == "boxes":
        shape = draw(st.sampled_from([(n, 4), (n, t, 4)])) if mostly else (n, 3)
        grid, target_shape, values, labels = shape[:-1], shape, COORDINATES, COORDINATES
    elif loss == "sequence_cross_entropy":
        shape, grid, target_shape = (n, t, c), (n, t), (n, t)
    else:
        shape, grid, target_shape = (n, t, c), (n,), (n, draw(st.integers(0, 3)))
        labels = st.integers(1, max(c - 1, 1)) if mostly else LABELS
        if isinstance(params, dict) and mostly:
            count = st.integers(0, target_shape[1])
            params["target_lengths"] = draw(st.lists(count, min_size=n, max_size=n))
    predictions = draw(arrays(np.float64, shape, elements=values))
    targets = draw(arrays(np.float64, target_shape, elements=labels))
    if family == "boxes" and mostly and shape[-1] == 4:
        corners = isinstance(params, dict) and params.get("box_format", "xyxy") == "xyxy"
        for boxes in (predictions, targets):  # sizes >= 0, or x2 >= x1 and y2 >= y1
            with np.errstate(over="ignore"):  # an inf corner is the service's to refuse
                boxes[..., 2:] = np.abs(boxes[..., 2:]) + (boxes[..., :2] if corners else 0)
    document: dict[str, Any] = {
        "predictions": predictions.tolist(),
        "targets": targets.tolist(),
        "params": params,
    }
    if draw(st.booleans()):
        document["sample_weight"] = draw(arrays(np.float64, (n,), elements=WEIGHTS)).tolist()
    if draw(st.booleans()):
        document["mask"] = draw(arrays(np.float64, grid, elements=MASK_VALUES)).tolist()
    if draw(st.booleans()):
        document["reduction"] = "sum"
    return loss, document


@given(request=structured_requests())
def test_structured_junk_never_gets_a_5xx_or_a_non_finite_200(
    client: TestClient, request: tuple[str, dict[str, Any]]
) -> None:
    loss, document = request
    response = post(client, loss, json.dumps(document).encode())
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        result = strict_json(response.text)
        assert np.shape(result["gradient"]) == np.shape(document["predictions"])
        assert_finite(result)
    else:
        assert_problem(response, 422)
