"""Random values inside the domains of the overlap, box and sequence losses (LOSSES.md).

The parts :mod:`tests.strategies.samplers` assembles, with the signatures of
:mod:`tests.strategies.draws`, plus ``shape(rng, kind, rank, max_elements)``: these losses fix
the meaning of their axes. A *kind*
names what a test grid iterates over: ``"<mode>/<input>"`` for the overlap losses (modes
binary, multilabel, multiclass with one-hot targets, multiclass-labels with an integer class
map; input probabilities or logits), ``"<variant>/<format>"`` for box_iou, and
``"probabilities"`` / ``"logits"`` for the sequence losses. Overlap targets depend on the kind,
so their target draws take it as a fifth argument.

Smooth (finite-difference) draws keep every box at least :data:`KINK_MARGIN` from a tie between
a predicted and a target coordinate and from an intersection edge (the kinks of min, max and
max(0, .)), keep predicted boxes at least 0.05 wide and tall, give overlap and sequence
probabilities inside [0.02, 0.98] (no clipping; the overlap losses never clip) and keep tversky's
base 1 - ratio away from 0. CTC inputs are always feasible, except, when ``zero_infinity`` is
set, one sample in some cases (its loss and gradient are then 0).
"""

from __future__ import annotations

import numpy as np

from tests.reference.ctc import feasible
from tests.strategies.draws import (
    KINK_MARGIN,
    Params,
    eps_params,
    label_targets,
    logit_predictions,
    maybe,
    maybe_default,
    one_hot,
    probabilities_or_logits,
    probability_predictions,
    smoothing_params,
    soft_or_hard_labels,
)

INPUTS = ("probabilities", "logits")
OVERLAP_MODES = ("binary", "multilabel", "multiclass", "multiclass-labels")
OVERLAP_KINDS = tuple(f"{mode}/{kind}" for mode in OVERLAP_MODES for kind in INPUTS)
BOX_VARIANTS = ("iou", "giou", "diou", "ciou")
BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
BOX_KINDS = tuple(f"{variant}/{fmt}" for variant in BOX_VARIANTS for fmt in BOX_FORMATS)


def _fits(shape: list[int], max_elements: int) -> bool:
    return int(np.prod(shape)) <= max_elements


def softmax(values: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


# --- overlap -------------------------------------------------------------------------------


def overlap_mode(kind: str) -> str:
    return kind.split("/")[0]


def overlap_shape(rng, kind, rank, max_elements):
    """(N, C, d1, ...) of ``rank`` axes; binary: (N, d1, ...) or, half the time, (N, 1, ...)."""
    mode = overlap_mode(kind)
    while True:
        shape = [int(rng.integers(1, 6)), *(int(rng.integers(1, 5)) for _ in range(rank - 1))]
        if mode == "binary" and rank >= 2 and rng.random() < 0.5:
            shape[1] = 1
        elif mode.startswith("multiclass"):
            shape[1] = int(rng.integers(2, 5))
        if _fits(shape, max_elements):
            return tuple(shape)


def overlap_params(name: str):
    def params(rng, kind, shape):
        mode = overlap_mode(kind).removesuffix("-labels")
        drawn: Params = {} if mode == "binary" and rng.random() < 0.3 else {"mode": mode}
        smooth = rng.choice([1.0, 0.0, float(rng.uniform(0.01, 2.0))])
        drawn |= maybe_default(rng, "smooth", float(smooth))
        drawn |= maybe(rng, 0.3, "eps", float(10.0 ** rng.uniform(-9, -4)))
        if name == "tversky":
            drawn |= maybe_default(rng, "alpha", float(rng.uniform(0.1, 1.5)))
            drawn |= maybe_default(rng, "beta", float(rng.uniform(0.1, 1.5)))
            gamma = rng.choice([1.0, 0.75, 2.0, float(rng.uniform(0.5, 3.0))])
            drawn |= maybe_default(rng, "gamma", float(gamma))
        else:
            drawn |= maybe(rng, 0.5, "squared_pred", bool(rng.random() < 0.7))
        classes = 1 if mode == "binary" else shape[1]
        if rng.random() < 0.4:
            weights = rng.uniform(0.0, 3.0, classes)
            weights[rng.random(classes) < 0.15] = 0.0
            drawn["class_weight"] = weights.tolist()
        if mode == "multiclass":
            drawn |= maybe(rng, 0.5, "include_background", bool(rng.random() < 0.5))
        return drawn

    return params


def overlap_targets(rng, shape, params, smooth, kind):
    """binary / multilabel: soft or hard values in [0, 1]; multiclass: one-hot, or the integer
    map (N, d1, ...) for the "-labels" kinds. Not smooth: some (sample, class) pairs have an
    empty target (every value 0)."""
    mode = overlap_mode(kind)
    if mode == "multiclass-labels":
        return label_targets(rng, shape, params, smooth)
    if mode == "multiclass":
        return one_hot(rng, shape).astype(np.float64)
    targets = soft_or_hard_labels(rng, shape, params, smooth)
    if not smooth and targets.ndim >= 2:
        view = targets.reshape(shape[0], shape[1] if mode != "binary" else 1, -1)
        view[rng.random(view.shape[:2]) < 0.2] = 0.0
    return targets


def overlap_predictions(rng, shape, targets, params, smooth):
    """Logits; or probabilities, softmax-normalised over axis 1 in multiclass mode."""
    if params.get("from_logits", False) or params.get("mode", "binary") != "multiclass":
        return probabilities_or_logits(rng, shape, targets, params, smooth)
    if smooth:
        return softmax(rng.normal(0.0, 1.0, shape), axis=1)
    values = softmax(rng.normal(0.0, 2.0, shape), axis=1)
    confident = one_hot(rng, shape).astype(np.float64)
    exact = rng.random((shape[0], 1, *shape[2:])) < 0.15
    return np.where(exact, confident, values)


# --- boxes ---------------------------------------------------------------------------------


def box_params(rng, kind, shape):
    variant, box_format = kind.split("/")
    drawn = maybe_default(rng, "variant", variant) if variant == "iou" else {"variant": variant}
    if box_format == "xyxy":
        drawn |= maybe_default(rng, "box_format", box_format)
    else:
        drawn["box_format"] = box_format
    return drawn | maybe(rng, 0.3, "eps", float(10.0 ** rng.uniform(-9, -4)))


def box_shape(rng, kind, rank, max_elements):
    """(N, 4) or (N, K, 4)."""
    while True:
        shape = [int(rng.integers(1, 7)), *(int(rng.integers(1, 4)) for _ in range(rank - 2)), 4]
        if _fits(shape, max_elements):
            return tuple(shape)


def from_corners(boxes: np.ndarray, box_format: str) -> np.ndarray:
    x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    if box_format == "xywh":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)
    if box_format == "cxcywh":
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)
    return boxes.copy()


def to_corners(boxes: np.ndarray, box_format: str) -> np.ndarray:
    a, b, c, d = np.moveaxis(np.asarray(boxes, dtype=np.float64), -1, 0)
    if box_format == "xywh":
        return np.stack([a, b, a + c, b + d], axis=-1)
    if box_format == "cxcywh":
        return np.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], axis=-1)
    return np.array(boxes, dtype=np.float64)


def corner_boxes(rng, grid, smooth, low_size=0.2) -> np.ndarray:
    """Corners (x1, y1, x2, y2) with sizes in [low_size, 4); not smooth: some of size 0."""
    origin = rng.uniform(-4.0, 4.0, (*grid, 2))
    size = rng.uniform(low_size, 4.0, (*grid, 2))
    if not smooth:
        size[rng.random((*grid, 2)) < 0.08] = 0.0
    return np.concatenate([origin, origin + size], axis=-1)


def box_targets(rng, shape, params, smooth):
    boxes = corner_boxes(rng, shape[:-1], smooth)
    return from_corners(boxes, params.get("box_format", "xyxy"))


def box_predictions(rng, shape, targets, params, smooth):
    """Per box: overlapping the target (moved and resized), disjoint from it (moved by more
    than its size), or anywhere; not smooth: some identical to the target or of size 0."""
    box_format = params.get("box_format", "xyxy")
    wanted = to_corners(targets, box_format)
    grid = shape[:-1]
    centre = (wanted[..., :2] + wanted[..., 2:]) / 2
    size = wanted[..., 2:] - wanted[..., :2]
    moved_size = np.maximum(size * np.exp(rng.normal(0.0, 0.4, size.shape)), 0.05)
    moved_centre = centre + rng.normal(0.0, 0.4, centre.shape) * np.maximum(size, 0.5)
    near = np.concatenate([moved_centre - moved_size / 2, moved_centre + moved_size / 2], -1)
    gap = size + moved_size + rng.uniform(0.1, 2.0, size.shape)
    shift = gap * rng.choice([-1.0, 1.0], size.shape)
    far = near + np.concatenate([shift, shift], axis=-1)
    anywhere = corner_boxes(rng, grid, smooth, low_size=0.05)
    choice = rng.random((*grid, 1))
    boxes = np.where(choice < 0.6, near, np.where(choice < 0.8, far, anywhere))
    if not smooth:
        boxes = np.where(rng.random((*grid, 1)) < 0.1, wanted, boxes)
        point = rng.random((*grid, 1)) < 0.05
        boxes = np.where(point, np.concatenate([boxes[..., :2], boxes[..., :2]], -1), boxes)
    return from_corners(boxes, box_format)


def box_rough(predictions, targets, params):
    """Boxes near a kink: a predicted coordinate near the target's same coordinate (min / max
    ties), an intersection edge near 0, or a predicted side below 0.05."""
    box_format = params.get("box_format", "xyxy")
    p, t = to_corners(predictions, box_format), to_corners(targets, box_format)
    near = np.any(np.abs(p - t) < KINK_MARGIN, axis=-1)
    for low, high in ((0, 2), (1, 3)):
        edge = np.minimum(p[..., high], t[..., high]) - np.maximum(p[..., low], t[..., low])
        near |= np.abs(edge) < KINK_MARGIN
        near |= p[..., high] - p[..., low] < 0.05
    return np.broadcast_to(near[..., None], predictions.shape)


# --- sequences -----------------------------------------------------------------------------


def sequence_shape(rng, kind, rank, max_elements):
    """(N, T, C) with C >= 2."""
    while True:
        shape = [int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.integers(2, 6))]
        if _fits(shape, max_elements):
            return tuple(shape)


def sequence_params(rng, kind, shape):
    drawn = smoothing_params(rng) | eps_params(rng)
    ignore = rng.choice([-1, shape[-1] + 3, int(rng.integers(0, shape[-1]))])
    return drawn | maybe(rng, 0.5, "ignore_index", int(ignore))


def sequence_targets(rng, shape, params, smooth):
    """Labels (N, T) in [0, C), about 15% ignore_index."""
    return label_targets(rng, (shape[0], shape[2], shape[1]), params, smooth, ignored=0.15)


def ctc_shape(rng, kind, rank, max_elements):
    """(N, T, C) with C in [2, 4]: tiny, so the reference and the brute force stay cheap."""
    while True:
        shape = [int(rng.integers(1, 5)), int(rng.integers(1, 8)), int(rng.integers(2, 5))]
        if _fits(shape, max_elements):
            return tuple(shape)


def ctc_params(rng, kind, shape):
    """blank anywhere in [0, C); input_lengths in [1, T] (or the default T); target lengths
    that admit a feasible target (with one non-blank symbol, C = 2, only L <= (T' + 1) / 2);
    zero_infinity and length_normalized sometimes."""
    samples, frames, classes = shape
    drawn: Params = maybe(rng, 0.5, "blank", int(rng.integers(0, classes)))
    inputs = [frames] * samples
    if rng.random() < 0.5:
        inputs = [int(t) for t in rng.integers(1, frames + 1, samples)]
        drawn["input_lengths"] = inputs
    longest = [min(t, 4) if classes > 2 else (t + 1) // 2 for t in inputs]
    drawn["target_lengths"] = [int(rng.integers(0, top + 1)) for top in longest]
    drawn |= maybe(rng, 0.3, "length_normalized", bool(rng.random() < 0.7))
    drawn |= maybe(rng, 0.3, "zero_infinity", bool(rng.random() < 0.7))
    if drawn.get("zero_infinity") and rng.random() < 0.5:
        victim = int(rng.integers(0, samples))
        drawn["target_lengths"][victim] = inputs[victim] + 1  # infeasible: its loss is 0
    return drawn


def ctc_targets(rng, shape, params, smooth):
    """(N, S) labels: a non-blank target of target_lengths[n] labels, feasible unless the
    length alone rules it out (see ctc_params), padded with any class index."""
    samples, frames, classes = shape
    blank = params.get("blank", 0)
    inputs = params.get("input_lengths", [frames] * samples)
    lengths = params["target_lengths"]
    symbols = [k for k in range(classes) if k != blank]
    width = max(1, *lengths) + int(rng.integers(0, 2))
    targets = rng.integers(0, classes, (samples, width)).astype(np.float64)
    for n, length in enumerate(lengths):
        for _ in range(1000):
            labels = [int(k) for k in rng.choice(symbols, length)]
            if feasible(inputs[n], labels) or length > inputs[n]:
                break
        targets[n, :length] = labels
    return targets


def ctc_predictions(rng, shape, targets, params, smooth):
    """Logits; or probability vectors per frame (not smooth: some exact 0s and 1s, which the
    clipping to [eps, 1] meets)."""
    if params.get("from_logits", False):
        return logit_predictions(rng, shape, smooth)
    if smooth:
        return softmax(rng.normal(0.0, 1.0, shape), axis=-1)
    values = softmax(rng.normal(0.0, 2.0, shape), axis=-1)
    special = rng.random(shape[:2]) < 0.15
    confident = probability_predictions(rng, shape, False) > 0.5
    values[special] = confident[special].astype(np.float64)
    return values
