"""The one table of naive references: :data:`REFERENCES`, keyed by canonical loss name.

Each formula is typed in its family's module (:mod:`~tests.reference.regression`,
:mod:`~tests.reference.classification`, :mod:`~tests.reference.structured`,
:mod:`~tests.reference.ctc`) as a function of one element; a :class:`Reference` says how the
element losses, their grid, their weights and the entries each element depends on are laid out
over the request's arrays, so the generic tests (reference agreement, gradients, properties)
treat every loss alike. Adding a loss means one entry here (and one sampler in
:data:`tests.strategies.samplers.SAMPLERS`).

Layouts (API.md "Elements"): ``"entries"``, every entry of predictions is an element (regression,
binary, custom); ``"classes"``, predictions ``(N, C, d1, ...)`` with an element per position
``(n, d1, ...)`` and dense targets of the same shape; ``"labels"``, the same with integer labels
``(N, d1, ...)``; ``"structured"``, the loss's own grid ((sample, class) pairs, boxes, tokens,
sequences).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.reference import classification as cls
from tests.reference import ctc, regression, structured

Params = Mapping[str, Any]
Shape = tuple[int, ...]
Arrays = Callable[[np.ndarray, np.ndarray, Params], Any]


def flat(array: np.ndarray) -> list[float]:
    """The entries of an array in C order, as Python floats."""
    return [float(value) for value in np.asarray(array, dtype=np.float64).reshape(-1)]


def class_vectors(array: np.ndarray) -> list[list[float]]:
    """(N, C, d1, ...) as one list of C floats per position (n, d1, ...), in C order."""
    samples, classes = array.shape[:2]
    view = np.asarray(array, dtype=np.float64).reshape(samples, classes, -1)
    return [
        [float(view[n, c, s]) for c in range(classes)]
        for n in range(samples)
        for s in range(view.shape[2])
    ]


def no_weights(predictions: np.ndarray, targets: np.ndarray, params: Params) -> None:
    """Every element weighs its mask value alone."""
    return None


def no_extras(*args: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Reference:
    """How one loss's naive formula covers a request.

    Calling it gives l_e for every element of the grid, in C order. ``grid(shape, params)``:
    the element grid (what ``mask`` must be) for predictions of ``shape``; ``weights``: each
    element's weight factor inside its sample besides the mask (class weight, ignore_index,
    background), None = all 1; ``owners``: for every entry of predictions, the elements whose
    loss it enters (a boolean array of the predictions' shape + the grid); ``extras(losses,
    weights, sample_weight, grid, targets, params, mask)``: the extras the loss reports.
    """

    layout: str
    losses: Arrays
    grid: Callable[[Shape, Params], Shape]
    owners: Arrays
    weights: Arrays = no_weights
    extras: Callable[..., dict[str, Any]] = no_extras

    def __call__(self, predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
        return self.losses(predictions, targets, params)

    @property
    def class_axis(self) -> bool:
        """Predictions (N, C, d1, ...): an element per position (n, d1, ...)."""
        return self.layout in ("classes", "labels")


# --- layouts -------------------------------------------------------------------------------


def same_grid(shape: Shape, params: Params) -> Shape:
    return tuple(shape)


def position_grid(shape: Shape, params: Params) -> Shape:
    return (shape[0], *shape[2:])


def own_entry(predictions: np.ndarray, targets: np.ndarray, params: Params) -> np.ndarray:
    """Entry e enters element e alone."""
    size = predictions.size
    return np.eye(size, dtype=bool).reshape(predictions.shape + predictions.shape)


def own_position(predictions: np.ndarray, targets: np.ndarray, params: Params) -> np.ndarray:
    """Entry (n, c, d...) enters the element (n, d...) of its position, whatever c."""
    grid = position_grid(predictions.shape, params)
    owners = np.zeros(predictions.shape + grid, dtype=bool)
    for position in np.ndindex(*grid):
        owners[(position[0], slice(None), *position[1:], *position)] = True
    return owners


def entries(loss: Callable[[float, float, Params], float]) -> Reference:
    """Regression and custom: l(p, y, params) per entry."""

    def losses(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
        return [loss(p, y, params) for p, y in zip(flat(predictions), flat(targets), strict=True)]

    return Reference("entries", losses, same_grid, own_entry)


def columns(loss: Callable[[float, float, Params, int], float]) -> Reference:
    """Binary and multi-label: l(p, y, params, column), column the index on the last axis."""

    def losses(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
        last = predictions.shape[-1]
        pairs = enumerate(zip(flat(predictions), flat(targets), strict=True))
        return [loss(p, y, params, index % last) for index, (p, y) in pairs]

    return Reference("entries", losses, same_grid, own_entry)


def classes(loss: Callable[[Sequence[float], Sequence[float], Params], float]) -> Reference:
    """Categorical with dense targets: l(scores, targets, params) per position."""

    def losses(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
        pairs = zip(class_vectors(predictions), class_vectors(targets), strict=True)
        return [loss(x, y, params) for x, y in pairs]

    return Reference("classes", losses, position_grid, own_position)


def labels(
    loss: Callable[[Sequence[float], int, Params], float],
    weight: Callable[[int, Params], float],
) -> Reference:
    """Categorical with integer labels: l(scores, label, params) per position, weighted by the
    label's factor ``weight(label, params)``."""

    def losses(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
        pairs = zip(class_vectors(predictions), flat(targets), strict=True)
        return [loss(x, int(t), params) for x, t in pairs]

    def weights(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
        return [weight(int(t), params) for t in flat(targets)]

    return Reference("labels", losses, position_grid, own_position, weights)


def overlap(name: str) -> Reference:
    return Reference(
        "structured",
        structured.overlap_losses(name),
        structured.overlap_grid,
        structured.overlap_owners,
        structured.overlap_weights,
        structured.overlap_extras,
    )


# --- the table -----------------------------------------------------------------------------

REFERENCES: dict[str, Reference] = {
    "mse": entries(regression.mse),
    "mae": entries(regression.mae),
    "huber": entries(regression.huber),
    "smooth_l1": entries(regression.smooth_l1),
    "log_cosh": entries(regression.log_cosh),
    "msle": entries(regression.msle),
    "mape": entries(regression.mape),
    "quantile": entries(regression.quantile),
    "poisson_nll": entries(regression.poisson_nll),
    "binary_cross_entropy": columns(cls.binary_cross_entropy),
    "binary_focal": columns(cls.binary_focal),
    "hinge": columns(cls.hinge),
    "squared_hinge": columns(cls.squared_hinge),
    "categorical_cross_entropy": classes(cls.categorical_cross_entropy),
    "categorical_focal": classes(cls.categorical_focal),
    "categorical_hinge": classes(cls.categorical_hinge),
    "kl_divergence": classes(cls.kl_divergence),
    "sparse_categorical_cross_entropy": labels(
        cls.sparse_categorical_cross_entropy, cls.sparse_label_weight
    ),
    "multi_margin": labels(cls.multi_margin, cls.unit_label_weight),
    "dice": overlap("dice"),
    "jaccard": overlap("jaccard"),
    "tversky": overlap("tversky"),
    "box_iou": Reference(
        "structured", structured.box_losses, structured.box_grid, structured.last_axis_owners
    ),
    "sequence_cross_entropy": Reference(
        "structured",
        structured.token_losses,
        structured.token_grid,
        structured.last_axis_owners,
        structured.token_weights,
        structured.sequence_extras,
    ),
    "ctc": Reference("structured", ctc.ctc_losses, ctc.ctc_grid, ctc.ctc_owners),
    "custom": entries(regression.custom),
}
