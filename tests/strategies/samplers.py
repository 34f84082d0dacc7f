"""Domain-aware random inputs for every loss, from a numpy Generator: :data:`SAMPLERS`, the one
table keyed by canonical loss name, for the losses whose domain is not the common one
(:data:`DEFAULT`: elementwise on real values); adding a loss means one reference in
:data:`tests.reference.REFERENCES`, and an entry here only for an unusual domain.

Each loss has a :class:`Sampler` that draws valid params, targets and predictions inside the
loss's domain (LOSSES.md) for each *kind* of input it takes: ``"logits"`` and
``"probabilities"`` for the losses with ``from_logits``, ``"scores"`` for the hinges,
``"values"`` for the regression losses, ``"<mode>/<input>"`` for the overlap losses and
``"<variant>/<format>"`` for box_iou. ``smooth=True`` asks for inputs a central finite
difference can differentiate: every element at least :data:`KINK_MARGIN` from the loss's kinks
(|p - y| at a regression kink, hinge margins, categorical-hinge ties, multi-margin terms at 0;
for mape, targets away from 0) and probabilities in [0.02, 0.98], where clipping is inactive.

:func:`random_case` draws a shape of a rank the loss takes (elementwise losses 1 to 4;
categorical ``(N, C)``, ``(N, C, d1)``, ``(N, C, d1, d2)``; multi_margin ``(N, C)`` only; the
overlap, box and sequence losses draw their own shapes, see :mod:`tests.strategies.structured`)
and optionally sample weights and a mask of the element grid's shape. :func:`select_samples`
takes some samples of a case (with the per-sample params of CTC). The draws themselves (per
domain) are in :mod:`tests.strategies.draws` and :mod:`tests.strategies.structured`; running the
service on a case is :func:`tests.support.engine.compute_case`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from service.validation.contracts import Elementwise
from tests.reference import element_grid, has_class_axis
from tests.reference.regression import CUSTOM_EXPRESSION
from tests.strategies import draws, structured

Params = dict[str, Any]
Shape = tuple[int, ...]
KINK_MARGIN = draws.KINK_MARGIN
LOGIT_KINDS = ("probabilities", "logits")
SCORES = ("scores",)
CATEGORICAL_RANKS = (2, 3, 4)  # (N, C), (N, C, d1), (N, C, d1, d2)


@dataclass(frozen=True)
class Case:
    name: str
    predictions: np.ndarray
    targets: np.ndarray
    params: Params
    sample_weight: np.ndarray | None = None
    mask: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        return self.predictions.shape[0]


@dataclass(frozen=True)
class Sampler:
    """How to draw valid inputs for one loss.

    ``params(rng, kind, shape)``; ``targets(rng, shape, params, smooth)`` with ``shape`` the
    predictions' shape; ``predictions(rng, shape, targets, params, smooth)``;
    ``rough(predictions, targets, params)``: the entries of predictions to draw again for a
    smooth case (too close to a kink). ``from_logits`` is set by :func:`random_case` from the
    kind (its last "/" part); the other params are the sampler's. ``shape(rng, kind, rank,
    max_elements)``, where given, draws the predictions' shape (default :func:`random_shape`);
    ``targets_by_kind``: the targets draw takes the kind too.
    """

    params: Callable[[np.random.Generator, str, Shape], Params]
    targets: Callable[[np.random.Generator, Shape, Params, bool], np.ndarray]
    predictions: Callable[[np.random.Generator, Shape, np.ndarray, Params, bool], np.ndarray]
    rough: Callable[[np.ndarray, np.ndarray, Params], np.ndarray] = draws.smooth_everywhere
    kinds: tuple[str, ...] = ("values",)
    ranks: tuple[int, ...] = (1, 2, 3, 4)
    shape: Callable[[np.random.Generator, str, int, int], Shape] | None = None
    targets_by_kind: bool = False  # targets(rng, shape, params, smooth, kind)


STRUCTURED_RANKS = {"overlap": (2, 3, 4), "box": (2, 3), "sequence": (3,)}


def overlap_sampler(name: str) -> Sampler:
    """dice, jaccard and tversky: every mode times probabilities and logits; targets by kind."""
    return Sampler(
        structured.overlap_params(name),
        structured.overlap_targets,
        structured.overlap_predictions,
        kinds=structured.OVERLAP_KINDS,
        ranks=STRUCTURED_RANKS["overlap"],
        shape=structured.overlap_shape,
        targets_by_kind=True,
    )


def custom_params(rng: np.random.Generator, kind: str, shape: Shape) -> Params:
    """The generic tests' expression (tests.reference.regression.CUSTOM_EXPRESSION), k > 0."""
    return {"expression": CUSTOM_EXPRESSION, "constants": {"k": float(rng.uniform(0.1, 2.0))}}


#: The sampler of the common domain: an elementwise loss of real predictions and targets, with
#: its default params. A loss whose domain is that needs no entry in :data:`SAMPLERS`.
DEFAULT = Sampler(draws.no_params, draws.normal_targets, draws.near_targets)

#: The samplers of the losses whose domain is not the common one (``mse`` and ``log_cosh`` take
#: :data:`DEFAULT`).
SAMPLERS: dict[str, Sampler] = {
    "mae": Sampler(draws.no_params, draws.normal_targets, draws.near_targets, draws.AT_ZERO),
    "huber": Sampler(
        draws.huber_params,
        draws.normal_targets,
        draws.huber_predictions,
        draws.distance_kinks(lambda p: [p.get("delta", 1.0)]),
    ),
    "smooth_l1": Sampler(
        draws.smooth_l1_params,
        draws.normal_targets,
        draws.smooth_l1_predictions,
        draws.distance_kinks(draws.smooth_l1_kinks),
    ),
    "msle": Sampler(draws.no_params, draws.msle_values, draws.msle_values),
    "mape": Sampler(draws.mape_params, draws.mape_targets, draws.mape_predictions, draws.AT_ZERO),
    "quantile": Sampler(
        draws.quantile_params, draws.normal_targets, draws.near_targets, draws.AT_ZERO
    ),
    "poisson_nll": Sampler(draws.poisson_params, draws.poisson_targets, draws.poisson_predictions),
    "binary_cross_entropy": Sampler(
        draws.bce_params,
        draws.soft_or_hard_labels,
        draws.probabilities_or_logits,
        kinds=LOGIT_KINDS,
    ),
    "binary_focal": Sampler(
        draws.focal_params,
        draws.soft_or_hard_labels,
        draws.probabilities_or_logits,
        kinds=LOGIT_KINDS,
    ),
    "hinge": Sampler(
        draws.hinge_params, draws.sign_labels, draws.score_predictions, draws.hinge_rough, SCORES
    ),
    "squared_hinge": Sampler(
        draws.hinge_params, draws.sign_labels, draws.score_predictions, draws.hinge_rough, SCORES
    ),
    "categorical_cross_entropy": Sampler(
        draws.cross_entropy_params,
        draws.class_targets,
        draws.probabilities_or_logits,
        kinds=LOGIT_KINDS,
        ranks=CATEGORICAL_RANKS,
    ),
    "sparse_categorical_cross_entropy": Sampler(
        draws.sparse_params,
        draws.sparse_targets,
        draws.probabilities_or_logits,
        kinds=LOGIT_KINDS,
        ranks=CATEGORICAL_RANKS,
    ),
    "categorical_focal": Sampler(
        draws.focal_params,
        draws.class_targets,
        draws.probabilities_or_logits,
        kinds=LOGIT_KINDS,
        ranks=CATEGORICAL_RANKS,
    ),
    "categorical_hinge": Sampler(
        draws.no_params,
        draws.hinge_targets,
        draws.score_predictions,
        draws.categorical_hinge_rough,
        SCORES,
        CATEGORICAL_RANKS,
    ),
    "multi_margin": Sampler(
        draws.multi_margin_params,
        draws.label_targets,
        draws.score_predictions,
        draws.multi_margin_rough,
        SCORES,
        (2,),
    ),
    "kl_divergence": Sampler(
        draws.kl_params,
        draws.distribution_targets,
        draws.probabilities_or_logits,
        kinds=LOGIT_KINDS,
        ranks=CATEGORICAL_RANKS,
    ),
    "dice": overlap_sampler("dice"),
    "jaccard": overlap_sampler("jaccard"),
    "tversky": overlap_sampler("tversky"),
    "box_iou": Sampler(
        structured.box_params,
        structured.box_targets,
        structured.box_predictions,
        structured.box_rough,
        structured.BOX_KINDS,
        STRUCTURED_RANKS["box"],
        structured.box_shape,
    ),
    "sequence_cross_entropy": Sampler(
        structured.sequence_params,
        structured.sequence_targets,
        draws.probabilities_or_logits,
        kinds=LOGIT_KINDS,
        ranks=STRUCTURED_RANKS["sequence"],
        shape=structured.sequence_shape,
    ),
    "ctc": Sampler(
        structured.ctc_params,
        structured.ctc_targets,
        structured.ctc_predictions,
        kinds=LOGIT_KINDS,
        ranks=STRUCTURED_RANKS["sequence"],
        shape=structured.ctc_shape,
    ),
    "custom": Sampler(custom_params, draws.normal_targets, draws.near_targets),
}
#: Params that hold one entry per sample: selecting samples selects them too.
PER_SAMPLE_PARAMS = ("target_lengths", "input_lengths")


def has_common_domain(name: str) -> bool:
    """An elementwise loss on real values whose params all have defaults: :data:`DEFAULT`."""
    spec = REGISTRY[name]
    required = [field for field in spec.params.model_fields.values() if field.is_required()]
    return isinstance(spec.contract, Elementwise) and not required


def sampler_of(name: str) -> Sampler:
    """The loss's own sampler, else :data:`DEFAULT` for a loss of the common domain."""
    if name in SAMPLERS:
        return SAMPLERS[name]
    if has_common_domain(name):
        return DEFAULT
    raise KeyError(f"{name}: its domain is not the common one; add a sampler to SAMPLERS")


def kinds_of(name: str) -> tuple[str, ...]:
    """The input kinds of a loss (a loss without a sampler: one, so test grids still build)."""
    return sampler_of(name).kinds if name in REGISTRY else ("values",)


def ranks_of(name: str) -> tuple[int, ...]:
    """The ranks of predictions a loss takes (a loss without a sampler: 1 to 4)."""
    return sampler_of(name).ranks if name in REGISTRY else (1, 2, 3, 4)


def rank_near(name: str, rank: int) -> int:
    """The rank the loss takes that is closest to ``rank`` (the larger one on a tie)."""
    return min(ranks_of(name), key=lambda r: (abs(r - rank), -r))


def random_shape(
    rng: np.random.Generator, rank: int, max_elements: int = 96, classes: bool = False
) -> Shape:
    """(N, d1, ...) with N >= 1 and every axis >= 1 (axis 1, the classes, from 2 to 5 when
    ``classes``), at most ``max_elements`` entries."""
    while True:
        shape = [int(rng.integers(1, 7)), *(int(rng.integers(1, 5)) for _ in range(rank - 1))]
        if classes:
            shape[1] = int(rng.integers(2, 6))
        if int(np.prod(shape)) <= max_elements:
            return tuple(shape)


def random_sample_weight(rng: np.random.Generator, n_samples: int) -> np.ndarray:
    """Non-negative weights: some 0, some small integers, the rest real numbers in (0, 3)."""
    kind = rng.random(n_samples)
    weights = rng.uniform(0.0, 3.0, n_samples)
    weights[kind < 0.15] = 0.0
    integers = (kind >= 0.15) & (kind < 0.5)
    weights[integers] = rng.integers(1, 4, int(integers.sum()))
    return weights


def random_mask(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Values in [0, 1]: some exactly 0, some exactly 1, the rest in between."""
    kind = rng.random(shape)
    mask = rng.uniform(0.0, 1.0, shape)
    mask[kind < 0.2] = 0.0
    mask[kind > 0.6] = 1.0
    return mask


def away_from_kinks(
    rng: np.random.Generator, sampler: Sampler, shape: Shape, targets: np.ndarray, params: Params
) -> np.ndarray:
    """Smooth predictions: the entries ``sampler.rough`` flags are drawn again."""
    predictions = sampler.predictions(rng, shape, targets, params, True)
    for _ in range(100):
        near = sampler.rough(predictions, targets, params)
        if not near.any():
            return predictions
        predictions[near] = sampler.predictions(rng, shape, targets, params, True)[near]
    raise RuntimeError("could not draw predictions away from the kinks")


def random_case(
    name: str,
    rng: np.random.Generator,
    *,
    rank: int | None = None,
    kind: str | None = None,
    weighted: bool = False,
    masked: bool = False,
    smooth: bool = False,
    max_elements: int = 96,
) -> Case:
    """A valid random input for loss ``name``: C-contiguous float64 arrays. ``rank`` and
    ``kind`` default to a random one the loss takes."""
    sampler = sampler_of(name)
    rank = int(rng.choice(sampler.ranks)) if rank is None else rank
    kind = str(rng.choice(sampler.kinds)) if kind is None else kind
    assert rank in sampler.ranks and kind in sampler.kinds, (name, rank, kind)
    if sampler.shape is not None:
        shape = sampler.shape(rng, kind, rank, max_elements)
    else:
        shape = random_shape(rng, rank, max_elements, classes=has_class_axis(name))
    params = sampler.params(rng, kind, shape)
    inputs = kind.rsplit("/", 1)[-1]
    if inputs == "logits":
        params["from_logits"] = True
    elif inputs == "probabilities" and rng.random() < 0.5:
        params["from_logits"] = False  # else the default, false
    extra = (kind,) if sampler.targets_by_kind else ()
    targets = sampler.targets(rng, shape, params, smooth, *extra)
    targets = np.ascontiguousarray(targets, dtype=np.float64)
    if smooth:
        predictions = away_from_kinks(rng, sampler, shape, targets, params)
    else:
        predictions = sampler.predictions(rng, shape, targets, params, False)
    predictions = np.ascontiguousarray(predictions, dtype=np.float64)
    sample_weight = random_sample_weight(rng, shape[0]) if weighted else None
    mask = random_mask(rng, element_grid(name, shape, params)) if masked else None
    return Case(name, predictions, targets, params, sample_weight, mask)


def select_samples(case: Case, index, sample_weight=None, *, keep_weight: bool = True) -> Case:
    """The samples ``index`` (an integer array: a subset, a permutation or repeats) of a case:
    predictions, targets, mask, the per-sample params (CTC lengths) and, when ``keep_weight``,
    the sample weights, unless ``sample_weight`` replaces them."""
    index = np.asarray(index)
    params = dict(case.params)
    for key in PER_SAMPLE_PARAMS:
        if params.get(key) is not None:
            params[key] = [params[key][i] for i in index]
    if sample_weight is None and keep_weight and case.sample_weight is not None:
        sample_weight = case.sample_weight[index]

    def take(array):
        return None if array is None else np.ascontiguousarray(array[index], dtype=np.float64)

    return Case(
        case.name,
        take(case.predictions),
        take(case.targets),
        params,
        None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64),
        take(case.mask),
    )
