"""Junk requests for the scoring routes, from the registry: the one generator the "never a 5xx"
tests draw from.

- :data:`REQUESTS`: any JSON document, or an object with any subset of the request's fields,
  each holding any JSON, number arrays, or (``params``) any loss's keys with edge values;
- :func:`loss_requests`: a registered loss and a request in (mostly) its own layout, so that
  requests get past the structure and reach the contracts, domains and kernels. The layout comes
  from the loss's family (:data:`LAYOUTS`, one entry per family of the registry); params are
  empty, the loss's own keys (``spec.params``) with edge values, or any keys; sample weights, a
  mask over (mostly) the element grid and the sum reduction are added at random.

Values sit at the edges of float64 and of each param's range: exact 0 and 1 and values within
1e-9 of them, subnormals, +-1e4 logits, 1e308, labels in and out of range, ignore_index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY, LossSpec

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities too: json.dumps writes them as NaN / Infinity tokens
    | st.text(max_size=6)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
NUMBER_ARRAYS = st.lists(st.floats(), min_size=1, max_size=4) | st.lists(
    st.lists(st.floats() | st.integers(-3, 3), min_size=2, max_size=2), min_size=1, max_size=3
)
#: Every params key of every loss (LOSSES.md), and one no loss has.
PARAM_KEYS = sorted({key for spec in REGISTRY.values() for key in spec.params.model_fields})
#: Values near the edges of the params' ranges, and lists for pos_weight and class_weight
#: (lengths 1 to 4, negative, huge).
EDGE_NUMBERS = st.sampled_from(
    [0, 1, 2, -1, 0.5, 1e-7, 1e-17, 0.49999, 0.999999, -100, 255, 1e308, -1e308, 5e-324, 1.5]
)
#: The string choices of LOSSES.md's params (overlap mode, box variant and format), and one
#: that is none of them.
OVERLAP_MODES = ["binary", "multilabel", "multiclass"]
BOX_CHOICES = ["iou", "giou", "diou", "ciou", "xyxy", "xywh", "cxcywh"]
PARAM_CHOICES = st.sampled_from([*OVERLAP_MODES, *BOX_CHOICES, "Binary", "xyxy."])
PARAM_VALUES = (
    JSON_LEAVES | EDGE_NUMBERS | PARAM_CHOICES | st.lists(EDGE_NUMBERS | JSON_LEAVES, max_size=4)
)
PARAMS = st.dictionaries(st.sampled_from([*PARAM_KEYS, "unknown"]), PARAM_VALUES)
FIELD_VALUES = {
    "predictions": NUMBER_ARRAYS | JSON_VALUES,
    "targets": NUMBER_ARRAYS | JSON_VALUES,
    "sample_weight": NUMBER_ARRAYS | JSON_VALUES,
    "mask": NUMBER_ARRAYS | JSON_VALUES,
    "reduction": st.sampled_from(["mean", "sum"]) | JSON_VALUES,
    "include": st.lists(st.sampled_from(["cost", "per_sample", "gradient"])) | JSON_VALUES,
    "params": PARAMS | JSON_VALUES,
    "unexpected": JSON_VALUES,
}
REQUESTS = st.fixed_dictionaries({}, optional=FIELD_VALUES) | JSON_VALUES

#: Probabilities (exact 0 and 1, within eps of them, a subnormal), or logits up to +-1e4.
PROBABILITIES = st.sampled_from([0, 1, 0.5, 1e-9, 1 - 1e-9, 5e-324]) | st.floats(0, 1)
LOGITS = st.sampled_from([1e4, -1e4, 0, 710, -745]) | st.floats(-50, 50)
#: Regression values: both signs, the domains' edges (msle's -1, poisson's 0), overflow.
VALUES = st.sampled_from([0, 1, -1, 0.5, -0.999, -1.5, 1e-300, 710, 1e154, -1e154]) | st.floats(
    -5, 5
)
WEIGHTS = st.sampled_from([0, 1, 0.5, 2, 1e-300, 1e308, -1])
MASK_VALUES = st.sampled_from([0, 1, 0.5, 1e-300, 1.5, -1])
#: One-hot and soft entries, both hinge conventions, labels in and out of range, ignore_index.
LABELS = st.sampled_from([0, 1, 2, 3, -1, 0.5, -100, 255, 1.5])
COORDINATES = st.sampled_from([0, 1, 2, -1, 0.5, 1e-300, 1e154, -1e154, 1e308]) | st.floats(-5, 5)
#: Values for a loss's own params: numbers at the edges, the string choices, booleans, null,
#: and lists (class_weight, pos_weight, CTC lengths) of edge numbers or small integers.
OWN_VALUES = (
    EDGE_NUMBERS
    | PARAM_CHOICES
    | st.booleans()
    | st.none()
    | st.lists(EDGE_NUMBERS, max_size=4)
    | st.lists(st.integers(-1, 4), max_size=4)
)
#: Expressions for the custom loss: valid ones with poles, overflows and kinks, and refused ones.
EXPRESSIONS = st.sampled_from(
    ["p", "(p - y)**2", "log(p)", "1 / (p - y)", "exp(p) - y * p", "k * abs(p - y)", "p +", "q"]
)


@dataclass
class Layout:
    """Arrays for one request: predictions of ``shape`` drawn from ``values``, targets of
    ``target_shape`` from ``labels``, and the element grid (the shape a mask mostly has)."""

    shape: tuple[int, ...]
    grid: tuple[int, ...]
    target_shape: tuple[int, ...]
    values: st.SearchStrategy[Any]
    labels: st.SearchStrategy[Any]
    mask_shapes: tuple[tuple[int, ...], ...] = ()
    corners: bool = False  # boxes: sizes made >= 0 (or x2 >= x1, y2 >= y1) before sending


def entries_layout(draw: st.DrawFn, spec: LossSpec, params: Any, mostly: bool) -> Layout:
    """Regression and custom: (N, d...) with targets of the same shape (mostly)."""
    n = draw(st.integers(1, 3))
    shape = (n, *draw(st.sampled_from([(), (2,), (2, 1)])))
    target_shape = shape if mostly else draw(st.sampled_from([shape, shape[:1], (n, 3)]))
    return Layout(shape, shape, target_shape, VALUES, VALUES)


def classification_layout(draw: st.DrawFn, spec: LossSpec, params: Any, mostly: bool) -> Layout:
    """Binary and categorical: (N, C, d...) (multi_margin mostly (N, C)), targets of the
    predictions' shape or without the class axis, as the catalogue's shapes say (mostly)."""
    shapes = spec.contract.shapes  # the catalogue's layouts, to aim mostly right
    n, classes = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    only_2d = shapes["predictions"] == "(N, C)" and draw(st.integers(0, 3))
    shape = (n, classes, *(() if only_2d else draw(st.sampled_from([(), (2,), (2, 1)]))))
    grid = shape[:1] + shape[2:]
    dense = shapes["targets"].startswith("same shape")
    target_shape = (shape if dense else grid) if draw(st.integers(0, 3)) else (grid, shape)[dense]
    scores = draw(st.sampled_from([PROBABILITIES, LOGITS]))
    mask_shape = grid if draw(st.integers(0, 3)) else shape
    return Layout(shape, grid, target_shape, scores, LABELS, (mask_shape,))


def overlap_layout(draw: st.DrawFn, spec: LossSpec, params: Any, mostly: bool) -> Layout:
    """dice, jaccard, tversky: (N, C, d...) with same-shape or class-map targets."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = draw(st.sampled_from([(), (2,), (2, 1), (1, 2, 1)]))
    shape, grid = (n, c, *spatial), (n, c)
    target_shape = draw(st.sampled_from([shape, (n, *spatial)]))
    labels = st.integers(0, c - 1) if mostly else LABELS
    labels = labels if target_shape != shape else st.sampled_from([0, 1]) | LABELS
    values = draw(st.sampled_from([PROBABILITIES, LOGITS]))
    return Layout(shape, grid, target_shape, values, labels)


def boxes_layout(draw: st.DrawFn, spec: LossSpec, params: Any, mostly: bool) -> Layout:
    """box_iou: (N, 4) or (N, K, 4), mostly not inverted; sometimes a last axis of 3."""
    n, t = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    shape = draw(st.sampled_from([(n, 4), (n, t, 4)])) if mostly else (n, 3)
    return Layout(shape, shape[:-1], shape, COORDINATES, COORDINATES, corners=mostly)


def sequence_layout(draw: st.DrawFn, spec: LossSpec, params: Any, mostly: bool) -> Layout:
    """(N, T, C) with (N, T) labels, or, for a loss with target lengths (ctc), padded (N, S)
    labels and (mostly) lengths in the params."""
    n, c, t = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    values = draw(st.sampled_from([PROBABILITIES, LOGITS]))
    if "target_lengths" not in spec.params.model_fields:
        labels = st.integers(0, c - 1) if mostly else LABELS
        return Layout((n, t, c), (n, t), (n, t), values, labels)
    target_shape = (n, draw(st.integers(0, 3)))
    labels = st.integers(1, max(c - 1, 1)) if mostly else LABELS
    if isinstance(params, dict) and mostly:
        count = st.integers(0, target_shape[1])
        params["target_lengths"] = draw(st.lists(count, min_size=n, max_size=n))
    return Layout((n, t, c), (n,), target_shape, values, labels)


#: How a family's requests are laid out; every family of the registry has one.
LAYOUTS: dict[str, Callable[[st.DrawFn, LossSpec, Any, bool], Layout]] = {
    "regression": entries_layout,
    "custom": entries_layout,
    "binary": classification_layout,
    "categorical": classification_layout,
    "overlap": overlap_layout,
    "boxes": boxes_layout,
    "sequence": sequence_layout,
}
FAMILIES = sorted({spec.family for spec in REGISTRY.values()})


def own_params(draw: st.DrawFn, spec: LossSpec) -> Any:
    """Empty, the loss's own keys with edge values (an expression for the custom loss), or any
    keys."""
    keys = sorted(spec.params.model_fields) or ["unknown"]
    own = st.dictionaries(st.sampled_from(keys), OWN_VALUES, max_size=3)
    if "expression" in keys:
        own = own.map(lambda drawn: drawn | {"expression": drawn.get("expression", "p")})
        own = own | st.fixed_dictionaries(
            {"expression": EXPRESSIONS}, optional={"constants": st.just({"k": 2.0})}
        )
    return draw(st.just({}) | own | PARAMS)


@st.composite
def loss_requests(draw: st.DrawFn, families: tuple[str, ...] = tuple(FAMILIES)) -> tuple[str, dict]:
    """A registered loss of one of ``families`` and a request for it in (mostly) its layout."""
    loss = draw(st.sampled_from(sorted(n for n, s in REGISTRY.items() if s.family in families)))
    spec = REGISTRY[loss]
    params = own_params(draw, spec)
    mostly = draw(st.integers(0, 3)) > 0  # mostly well-formed, sometimes anything
    layout = LAYOUTS[spec.family](draw, spec, params, mostly)
    predictions = draw(arrays(np.float64, layout.shape, elements=layout.values))
    targets = draw(arrays(np.float64, layout.target_shape, elements=layout.labels))
    if layout.corners:
        corners = isinstance(params, dict) and params.get("box_format", "xyxy") == "xyxy"
        for boxes in (predictions, targets):  # sizes >= 0, or x2 >= x1 and y2 >= y1
            with np.errstate(over="ignore"):  # an inf corner is the service's to refuse
                boxes[..., 2:] = np.abs(boxes[..., 2:]) + (boxes[..., :2] if corners else 0)
    document: dict[str, Any] = {
        "predictions": predictions.tolist(),
        "targets": targets.tolist(),
        "params": params,
    }
    n = layout.shape[0]
    if draw(st.booleans()):
        document["sample_weight"] = draw(arrays(np.float64, (n,), elements=WEIGHTS)).tolist()
    if draw(st.booleans()):
        mask_shape = draw(st.sampled_from(layout.mask_shapes or (layout.grid,)))
        document["mask"] = draw(arrays(np.float64, mask_shape, elements=MASK_VALUES)).tolist()
    if draw(st.booleans()):
        document["reduction"] = "sum"
    return loss, document
