"""Naive references for the overlap, box and sequence losses, typed again from ../shared/LOSSES.md.

Nothing here imports from ``service``. Plain Python floats, loops and the ``math`` module; sums
use ``math.fsum``. Unlike the elementwise and categorical losses, an element here sees many
entries of predictions, so each loss gives (and :data:`tests.reference.REFERENCES` records):

- a grid ``(shape, params)``: the element grid (what ``mask`` must be) for predictions of
  ``shape``;
- losses ``(predictions, targets, params)``: l_e for every element, in C order of the grid;
- weights ``(predictions, targets, params)``: each element's weight factor inside its sample
  besides the mask (class weight, background, ignore_index); None = all 1;
- owners ``(predictions, targets, params)``: for every entry of predictions, the elements whose
  loss it enters (an entry outside every weighted element must get a gradient of exactly 0);
- extras: what the loss adds to its result (``per_class``, ``perplexity`` and ``tokens``).

Elements (API.md, LOSSES.md): a (sample, class) pair for dice / jaccard / tversky (grid (N, C),
C = 1 in binary mode); a box for box_iou (grid = shape[:-1]); a token for sequence
cross-entropy (grid (N, T)); a sequence for ctc (grid (N,)). A missing key in ``params`` takes
the default stated in LOSSES.md. CTC is in :mod:`tests.reference.ctc`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tests.reference.classification import (
    DEFAULT_EPS,
    categorical_cross_entropy,
    log_softmax,
    one_hot,
    sigmoid,
)

Params = Mapping[str, Any]
Shape = tuple[int, ...]


def _floats(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float64)


# --- overlap: dice, jaccard, tversky ---------------------------------------------------------


def _mode(params: Params) -> str:
    return params.get("mode", "binary")


def overlap_grid(shape: Shape, params: Params) -> Shape:
    """(N, 1) in binary mode, (N, C) otherwise."""
    return (shape[0], 1) if _mode(params) == "binary" else (shape[0], shape[1])


def overlap_vectors(
    predictions: np.ndarray, targets: np.ndarray, params: Params
) -> tuple[list[list[list[float]]], list[list[list[float]]]]:
    """q[n][c][s] and y[n][c][s]: probabilities and targets per sample, class and position.

    binary: every entry of (N, d1, ...) or (N, 1, d1, ...) is a position of the one class;
    multilabel: (N, C, d1, ...), sigmoid per entry for logits; multiclass: softmax over axis 1
    per position for logits, targets one-hot of the same shape or an integer map (N, d1, ...).
    """
    predictions = _floats(predictions)
    samples = predictions.shape[0]
    mode = _mode(params)
    from_logits = bool(params.get("from_logits", False))
    view = predictions.reshape(samples, 1 if mode == "binary" else predictions.shape[1], -1)
    classes, positions = view.shape[1], view.shape[2]
    q = [[[float(x) for x in row] for row in sample] for sample in view]
    if from_logits and mode == "multiclass":
        for n in range(samples):
            for s in range(positions):
                logs = log_softmax([q[n][c][s] for c in range(classes)])
                for c in range(classes):
                    q[n][c][s] = math.exp(logs[c])
    elif from_logits:
        q = [[[sigmoid(x) for x in row] for row in sample] for sample in q]
    targets = _floats(targets)
    if targets.shape == predictions.shape:
        dense = targets.reshape(view.shape)
        y = [[[float(x) for x in row] for row in sample] for sample in dense]
    else:  # integer class map (N, d1, ...), multiclass only
        labels = targets.reshape(samples, positions)
        y = [
            [[1.0 if int(label) == c else 0.0 for label in row] for c in range(classes)]
            for row in labels
        ]
    return q, y


def overlap_sums(q: list[float], y: list[float], params: Params) -> dict[str, float]:
    """I, P (sum q^2 with squared_pred), G, FP, FN over the positions of one (n, c)."""
    power = 2 if params.get("squared_pred", False) else 1
    return {
        "I": math.fsum(a * b for a, b in zip(q, y, strict=True)),
        "P": math.fsum(a**power for a in q),
        "G": math.fsum(y),
        "FP": math.fsum(a * (1.0 - b) for a, b in zip(q, y, strict=True)),
        "FN": math.fsum((1.0 - a) * b for a, b in zip(q, y, strict=True)),
    }


def dice(sums: Mapping[str, float], params: Params) -> float:
    """1 - (2I + s) / max(P + G + s, eps)."""
    s, eps = params.get("smooth", 1.0), params.get("eps", DEFAULT_EPS)
    return 1.0 - (2.0 * sums["I"] + s) / max(sums["P"] + sums["G"] + s, eps)


def jaccard(sums: Mapping[str, float], params: Params) -> float:
    """1 - (I + s) / max(P + G - I + s, eps)."""
    s, eps = params.get("smooth", 1.0), params.get("eps", DEFAULT_EPS)
    return 1.0 - (sums["I"] + s) / max(sums["P"] + sums["G"] - sums["I"] + s, eps)


def tversky(sums: Mapping[str, float], params: Params) -> float:
    """(1 - (I + s) / max(I + alpha FP + beta FN + s, eps))^gamma."""
    s, eps = params.get("smooth", 1.0), params.get("eps", DEFAULT_EPS)
    alpha, beta = params.get("alpha", 0.5), params.get("beta", 0.5)
    gamma = params.get("gamma", 1.0)
    denominator = max(sums["I"] + alpha * sums["FP"] + beta * sums["FN"] + s, eps)
    return (1.0 - (sums["I"] + s) / denominator) ** gamma


OVERLAP_FORMULAS: dict[str, Callable[[Mapping[str, float], Params], float]] = {
    "dice": dice,
    "jaccard": jaccard,
    "tversky": tversky,
}


def overlap_losses(name: str) -> Callable[[np.ndarray, np.ndarray, Params], list[float]]:
    formula = OVERLAP_FORMULAS[name]

    def losses(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
        q, y = overlap_vectors(predictions, targets, params)
        return [
            formula(overlap_sums(q_nc, y_nc, params), params)
            for q_n, y_n in zip(q, y, strict=True)
            for q_nc, y_nc in zip(q_n, y_n, strict=True)
        ]

    return losses


def overlap_weights(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
    """class_weight[c] x (0 for class 0 when include_background is false, multiclass mode)."""
    samples, classes = overlap_grid(predictions.shape, params)
    class_weight = params.get("class_weight")
    factors = [1.0 if class_weight is None else float(class_weight[c]) for c in range(classes)]
    if _mode(params) == "multiclass" and not params.get("include_background", True):
        factors[0] = 0.0
    return factors * samples


def overlap_owners(predictions: np.ndarray, targets: np.ndarray, params: Params) -> np.ndarray:
    """Entry (n, c, ...) enters element (n, c); in binary mode every entry of sample n enters
    (n, 0); with multiclass logits the softmax ties every class of a position to every element
    (n, c') of the sample. Returns a boolean array (predictions' shape + grid)."""
    grid = overlap_grid(predictions.shape, params)
    owners = np.zeros(predictions.shape + grid, dtype=bool)
    for n in range(grid[0]):
        if _mode(params) == "binary":
            owners[n, ..., n, 0] = True
        elif _mode(params) == "multiclass" and params.get("from_logits", False):
            owners[n, ..., n, :] = True
        else:
            for c in range(grid[1]):
                owners[n, c, ..., n, c] = True
    return owners


# --- boxes ---------------------------------------------------------------------------------


def corners(box: list[float], box_format: str) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) from xyxy, xywh (x1, y1, w, h) or cxcywh (centre and size)."""
    a, b, c, d = box
    if box_format == "xyxy":
        return a, b, c, d
    if box_format == "xywh":
        return a, b, a + c, b + d
    if box_format == "cxcywh":
        return a - c / 2.0, b - d / 2.0, a + c / 2.0, b + d / 2.0
    raise ValueError(f"unknown box_format {box_format!r}")


def box_loss(predicted: list[float], target: list[float], params: Params) -> float:
    """torchvision's IoU family, LOSSES.md "Boxes"; atan(w / h) as atan2(w, h)."""
    box_format = params.get("box_format", "xyxy")
    variant, eps = params.get("variant", "iou"), params.get("eps", DEFAULT_EPS)
    px1, py1, px2, py2 = corners(predicted, box_format)
    tx1, ty1, tx2, ty2 = corners(target, box_format)
    pw, ph, tw, th = px2 - px1, py2 - py1, tx2 - tx1, ty2 - ty1
    overlap = max(0.0, min(px2, tx2) - max(px1, tx1)) * max(0.0, min(py2, ty2) - max(py1, ty1))
    union = pw * ph + tw * th - overlap
    iou = overlap / (union + eps)
    loss = 1.0 - iou
    ex1, ey1, ex2, ey2 = min(px1, tx1), min(py1, ty1), max(px2, tx2), max(py2, ty2)
    if variant == "giou":
        enclosing = (ex2 - ex1) * (ey2 - ey1)
        return loss + (enclosing - union) / (enclosing + eps)
    if variant == "iou":
        return loss
    dx = (px1 + px2) / 2.0 - (tx1 + tx2) / 2.0
    dy = (py1 + py2) / 2.0 - (ty1 + ty2) / 2.0
    rho2 = dx * dx + dy * dy
    diagonal2 = (ex2 - ex1) ** 2 + (ey2 - ey1) ** 2
    loss += rho2 / (diagonal2 + eps)
    if variant == "diou":
        return loss
    if variant != "ciou":
        raise ValueError(f"unknown variant {variant!r}")
    v = 4.0 / math.pi**2 * (math.atan2(tw, th) - math.atan2(pw, ph)) ** 2
    alpha = v / (1.0 - iou + v + eps)
    return loss + alpha * v


def box_grid(shape: Shape, params: Params) -> Shape:
    return tuple(shape[:-1])


def box_losses(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
    predicted = _floats(predictions).reshape(-1, 4).tolist()
    wanted = _floats(targets).reshape(-1, 4).tolist()
    return [box_loss(p, t, params) for p, t in zip(predicted, wanted, strict=True)]


def last_axis_owners(predictions: np.ndarray, targets: np.ndarray, params: Params) -> np.ndarray:
    """Entry (..., k) enters the element (...): the last axis is reduced (boxes, tokens)."""
    grid = predictions.shape[:-1]
    owners = np.zeros(predictions.shape + grid, dtype=bool)
    for index in np.ndindex(*grid):
        owners[(*index, slice(None), *index)] = True
    return owners


# --- sequence cross-entropy ----------------------------------------------------------------


def token_grid(shape: Shape, params: Params) -> Shape:
    return (shape[0], shape[1])


def token_losses(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
    """Sparse categorical cross-entropy over the last axis, per token; an ignored token (its
    label outside [0, C)) is reported as 0, its weight being 0."""
    predictions = _floats(predictions)
    classes = predictions.shape[-1]
    scores = predictions.reshape(-1, classes).tolist()
    labels = [int(t) for t in _floats(targets).reshape(-1)]
    return [
        categorical_cross_entropy(x, one_hot(t, classes), params) if 0 <= t < classes else 0.0
        for x, t in zip(scores, labels, strict=True)
    ]


def token_weights(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
    """0 where the target is ignore_index (default -100), else 1."""
    ignore = params.get("ignore_index", -100)
    return [0.0 if int(t) == ignore else 1.0 for t in _floats(targets).reshape(-1)]


# --- extras --------------------------------------------------------------------------------


def weighted_mean(pairs: list[tuple[float, float]]) -> float:
    """sum w l / sum w over (w, l) pairs; 0 where the weights sum to 0."""
    total = math.fsum(w for w, _ in pairs)
    return math.fsum(w * loss for w, loss in pairs) / total if total != 0 else 0.0


def overlap_extras(
    losses: list[float],
    weights: list[float],
    sample_weight: np.ndarray | None,
    grid: Shape,
    targets: np.ndarray,
    params: Params,
    mask: np.ndarray | None,
) -> dict[str, Any]:
    """LOSSES.md / the contract decisions: ``per_class`` (per class c, the mean of l_(n, c)
    over the samples weighted by w_e = sample_weight x class weight x mask). ``weights`` are
    the inner weights (mask included)."""
    full = _full_weights(losses, weights, sample_weight, grid)
    classes = grid[1]
    return {
        "per_class": [
            weighted_mean([(full[i], losses[i]) for i in range(c, len(losses), classes)])
            for c in range(classes)
        ]
    }


def sequence_extras(
    losses: list[float],
    weights: list[float],
    sample_weight: np.ndarray | None,
    grid: Shape,
    targets: np.ndarray,
    params: Params,
    mask: np.ndarray | None,
) -> dict[str, Any]:
    """``perplexity`` = exp(sum / weight_sum) (1 when weight_sum = 0) and ``tokens`` = sum of
    mask x (target != ignore_index), without sample_weight (sequence cross-entropy)."""
    full = _full_weights(losses, weights, sample_weight, grid)
    total = math.fsum(w * loss for w, loss in zip(full, losses, strict=True))
    weight_sum = math.fsum(full)
    inner = token_weights(np.zeros(0), targets, params)
    masked = [1.0] * len(inner) if mask is None else [float(m) for m in mask.reshape(-1)]
    return {
        "perplexity": math.exp(total / weight_sum) if weight_sum != 0 else 1.0,
        "tokens": math.fsum(m * v for m, v in zip(masked, inner, strict=True)),
    }


def _full_weights(
    losses: list[float], weights: list[float], sample_weight: np.ndarray | None, grid: Shape
) -> list[float]:
    """w_e = sample_weight[i] x v_e for every element."""
    samples = grid[0]
    per_sample = len(losses) // samples
    scale = [1.0] * samples if sample_weight is None else [float(w) for w in sample_weight]
    return [scale[i // per_sample] * v for i, v in enumerate(weights)]
