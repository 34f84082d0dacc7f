"""What API.md and LOSSES.md document about the losses, typed again for the tests: families,
aliases, params defaults and ranges, shapes, formulas and the notes where a convention differs
from a library. tests/api/test_catalogue.py holds the catalogue (GET /v1/losses) to them, and
checks them against the README's loss tables.
"""

from __future__ import annotations

from typing import Any

import pytest

#: LOSSES.md tables: every params key with its default ("Every params key below is optional,
#: with the default shown"; shared parameters: from_logits false, eps 1e-7, label_smoothing 0).
PROBABILITY_DEFAULTS = {"from_logits": False, "eps": 1e-7}
CROSS_ENTROPY_DEFAULTS = {**PROBABILITY_DEFAULTS, "label_smoothing": 0.0}
FOCAL_DEFAULTS = {"gamma": 2.0, "alpha": None, **PROBABILITY_DEFAULTS}
OVERLAP_DEFAULTS = {
    "mode": "binary",
    "smooth": 1.0,
    "class_weight": None,
    "include_background": True,
    **PROBABILITY_DEFAULTS,
}
DOCUMENTED_DEFAULTS: dict[str, dict[str, Any]] = {
    "mse": {},
    "mae": {},
    "huber": {"delta": 1.0},
    "smooth_l1": {"beta": 1.0},
    "log_cosh": {},
    "msle": {},
    "mape": {"eps": 1e-7},
    "quantile": {"quantile": 0.5},
    "poisson_nll": {"log_input": True, "eps": 1e-8},
    "binary_cross_entropy": {**CROSS_ENTROPY_DEFAULTS, "pos_weight": None},
    "binary_focal": FOCAL_DEFAULTS,
    "hinge": {"margin": 1.0},
    "squared_hinge": {"margin": 1.0},
    "categorical_cross_entropy": CROSS_ENTROPY_DEFAULTS,
    "sparse_categorical_cross_entropy": {
        **CROSS_ENTROPY_DEFAULTS,
        "ignore_index": -100,
        "class_weight": None,
    },
    "categorical_focal": FOCAL_DEFAULTS,
    "categorical_hinge": {},
    "multi_margin": {"margin": 1.0, "p": 1},
    "kl_divergence": PROBABILITY_DEFAULTS,
    # Overlap: mode binary, smooth 1.0, class_weight null, include_background true; Dice and
    # Jaccard add squared_pred false, Tversky alpha 0.5, beta 0.5, gamma 1.0.
    "dice": {**OVERLAP_DEFAULTS, "squared_pred": False},
    "jaccard": {**OVERLAP_DEFAULTS, "squared_pred": False},
    "tversky": {**OVERLAP_DEFAULTS, "alpha": 0.5, "beta": 0.5, "gamma": 1.0},
    "box_iou": {"variant": "iou", "box_format": "xyxy", "eps": 1e-7},
    "sequence_cross_entropy": {**CROSS_ENTROPY_DEFAULTS, "ignore_index": -100},
    # target_lengths is required (no default): DOCUMENTED_REQUIRED.
    "ctc": {
        "input_lengths": None,
        "blank": 0,
        **PROBABILITY_DEFAULTS,
        "zero_infinity": False,
        "length_normalized": False,
    },
    "custom": {"constants": {}},  # expression is required: DOCUMENTED_REQUIRED
}
#: LOSSES.md: "Every params key below is optional", except ctc's target_lengths "(required)".
DOCUMENTED_REQUIRED = {"ctc": ["target_lengths"], "custom": ["expression"]}
#: API.md, table "Losses": the family of each documented loss.
REGRESSION = ["mse", "mae", "huber", "smooth_l1", "log_cosh", "msle", "mape", "quantile"]
BINARY = ["binary_cross_entropy", "binary_focal", "hinge", "squared_hinge"]
CATEGORICAL = [
    "categorical_cross_entropy",
    "sparse_categorical_cross_entropy",
    "categorical_focal",
    "categorical_hinge",
    "multi_margin",
    "kl_divergence",
]
OVERLAP = ["dice", "jaccard", "tversky"]
SEQUENCE = ["sequence_cross_entropy", "ctc"]
DOCUMENTED_FAMILIES = {
    **dict.fromkeys([*REGRESSION, "poisson_nll"], "regression"),
    **dict.fromkeys(BINARY, "binary"),
    **dict.fromkeys(CATEGORICAL, "categorical"),
    **dict.fromkeys(OVERLAP, "overlap"),
    "box_iou": "boxes",
    **dict.fromkeys(SEQUENCE, "sequence"),
    "custom": "custom",
}
#: LOSSES.md: aliases named in the binary, categorical and overlap tables.
DOCUMENTED_ALIASES = [
    ("binary_cross_entropy", "bce"),
    ("binary_cross_entropy", "log_loss"),
    ("categorical_cross_entropy", "cce"),
    ("sparse_categorical_cross_entropy", "sparse_cce"),
    ("sparse_categorical_cross_entropy", "cross_entropy"),
    ("jaccard", "iou"),
]
#: LOSSES.md ranges: delta > 0, beta >= 0, quantile in (0, 1); label_smoothing in [0, 1);
#: alpha in [0, 1]; p in {1, 2}; class_weight "C non-negative numbers"; pos_weight >= 0. The
#: issue adds gamma >= 0 and eps below 0.5; issue 4 the overlap, box and sequence ranges
#: (smooth >= 0, Tversky gamma > 0, CTC lengths: targets in [0, S], inputs in [1, T]).
#: The service bounds eps below by 1e-15 (README): under 2^-53, 1 - eps rounds to 1 and
#: clipping could no longer keep log(1 - p) finite.
SMOOTHING = {"minimum": 0, "exclusiveMaximum": 1}
EPS = {"minimum": 1e-15, "exclusiveMaximum": 0.5}
DOCUMENTED_BOUNDS = [
    pytest.param("huber", "delta", {"exclusiveMinimum": 0}, id="huber-delta"),
    pytest.param("smooth_l1", "beta", {"minimum": 0}, id="smooth_l1-beta"),
    pytest.param(
        "quantile",
        "quantile",
        {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
        id="quantile-quantile",
    ),
    *(
        pytest.param(name, key, bounds, id=f"{name}-{key}")
        for names, key, bounds in [
            (["binary_cross_entropy", "categorical_cross_entropy"], "label_smoothing", SMOOTHING),
            (["sparse_categorical_cross_entropy"], "label_smoothing", SMOOTHING),
            (["binary_cross_entropy", "binary_focal", "categorical_focal"], "eps", EPS),
            (["categorical_cross_entropy", "sparse_categorical_cross_entropy"], "eps", EPS),
            (["kl_divergence"], "eps", EPS),
            (["binary_focal", "categorical_focal"], "gamma", {"minimum": 0}),
            (["binary_focal", "categorical_focal"], "alpha", {"minimum": 0, "maximum": 1}),
            (["multi_margin"], "p", {"enum": [1, 2]}),
            (["sparse_categorical_cross_entropy"], "class_weight", {"minimum": 0}),
            (["binary_cross_entropy"], "pos_weight", {"minimum": 0}),
            # issue 4: overlap, boxes, sequences
            (OVERLAP, "mode", {"enum": ["binary", "multilabel", "multiclass"]}),
            (OVERLAP, "smooth", {"minimum": 0}),
            (OVERLAP, "eps", EPS),
            (OVERLAP, "class_weight", {"minimum": 0}),
            (["tversky"], "alpha", {"minimum": 0}),
            (["tversky"], "beta", {"minimum": 0}),
            (["tversky"], "gamma", {"exclusiveMinimum": 0}),
            (["box_iou"], "variant", {"enum": ["iou", "giou", "diou", "ciou"]}),
            (["box_iou"], "box_format", {"enum": ["xyxy", "xywh", "cxcywh"]}),
            (["sequence_cross_entropy"], "label_smoothing", SMOOTHING),
            (["sequence_cross_entropy", "ctc"], "eps", EPS),
            (["ctc"], "target_lengths", {"minimum": 0}),
            (["ctc"], "input_lengths", {"minimum": 1}),
            (["ctc"], "blank", {"minimum": 0}),
        ]
        for name in names
    ),
]
#: LOSSES.md, where a convention differs from a library, "say so in the catalogue": patterns
#: (case-insensitive) the loss's notes must match.
DOCUMENTED_DEVIATIONS = [
    pytest.param(
        "sparse_categorical_cross_entropy",
        [r"label smoothing", r"class.?weight", r"pytorch", r"ignored.*\bnan\b"],
        id="sparse-cce-smoothing-weights-and-all-ignored",
    ),
    pytest.param(
        "binary_cross_entropy",
        [r"clip", r"pytorch", r"-100", r"scikit-learn"],
        id="bce-clipping",
    ),
    pytest.param(
        "box_iou",
        [r"torchvision", r"alpha", r"no_grad|constant|detach", r"exact|derivative|differentiat"],
        id="ciou-alpha-differentiated",
    ),
]
#: API.md / LOSSES.md layouts, as the catalogue's "shapes" must begin.
DOCUMENTED_SHAPES = [
    pytest.param("categorical_cross_entropy", "predictions", "(N, C, d1, ...)", id="cce-pred"),
    pytest.param("categorical_cross_entropy", "targets", "same shape", id="cce-targets"),
    pytest.param(
        "sparse_categorical_cross_entropy", "predictions", "(N, C, d1, ...)", id="sparse-pred"
    ),
    pytest.param("sparse_categorical_cross_entropy", "targets", "(N, d1, ...)", id="sparse-tgt"),
    pytest.param("multi_margin", "predictions", "(N, C)", id="multi-margin-pred"),
    pytest.param("multi_margin", "targets", "(N,)", id="multi-margin-targets"),
    pytest.param("binary_cross_entropy", "targets", "same shape", id="bce-targets"),
    *(
        pytest.param(name, field, layout, id=f"{name}-{field}")
        for name, field, layout in [
            *((name, "mask", "(N, C)") for name in OVERLAP),
            ("box_iou", "predictions", "(N, ..., 4)"),
            ("box_iou", "targets", "same shape"),
            ("sequence_cross_entropy", "predictions", "(N, T, C)"),
            ("sequence_cross_entropy", "targets", "(N, T)"),
            ("sequence_cross_entropy", "mask", "(N, T)"),
            ("ctc", "predictions", "(N, T, C)"),
            ("ctc", "targets", "(N, S)"),
            ("ctc", "mask", "(N,)"),
        ]
    ),
]
#: LOSSES.md's formulas, as the catalogue's formula.loss must state them (regular
#: expressions; ".?" stands for LOSSES.md's "·", which plain text writes as a space).
DOCUMENTED_FORMULAS = [
    ("dice", [r"1 - \(2I \+ s\) / max\(P \+ G \+ s, eps\)", r"squared_pred"]),
    ("jaccard", [r"1 - \(I \+ s\) / max\(P \+ G - I \+ s, eps\)"]),
    ("tversky", [r"\(1 - \(I \+ s\) / max\(I \+ alpha.?FP \+ beta.?FN \+ s, eps\)\)\^gamma"]),
    (
        "box_iou",
        [
            r"IoU = A\S* / \(U \+ eps\)",
            r"1 - IoU",
            r"\(\|E\| - U\) / \(\|E\| \+ eps\)",
            r"rho\^?2 / \(c\^?2 \+ eps\)",
            r"atan",
            r"alpha = v / \(1 - IoU \+ v \+ eps\)",
        ],
    ),
    ("sequence_cross_entropy", [r"-\s?sum_c y'_c log q_c", r"softmax", r"\(1 - s\)"]),
    ("ctc", [r"-\s?log", r"alignment"]),
]
