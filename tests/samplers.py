"""Domain-aware random inputs for every regression loss, from a numpy Generator.

Each loss has a :class:`Sampler` that draws valid params, targets and predictions inside the
loss's domain (LOSSES.md). ``smooth=True`` asks for inputs a central finite difference can
differentiate: every element at least :data:`KINK_MARGIN` away from the loss's kinks (and, for
mape, targets away from 0, where the slope is 100 / eps). :func:`random_case` adds a random
shape of rank 1 to 4, and optionally sample weights and a mask.

:func:`compute_case` runs the service on a case, the one place the tests build ``Inputs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import service.losses  # noqa: F401  (registers every loss)
from service.contracts import Inputs
from service.engine import LossResult, compute
from service.registry import REGISTRY

Params = dict[str, Any]
# Finite-difference steps are <= 1e-6 * max(1, |p|) <= 1e-5 for the values drawn here, so a
# margin of 1e-3 keeps both evaluation points on the same side of a kink.
KINK_MARGIN = 1e-3


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

    ``kinks(params)`` lists the values of |p - y| where the loss is not differentiable (or,
    for huber and smooth_l1, not twice differentiable); ``smooth`` draws stay away from them.
    """

    params: Callable[[np.random.Generator], Params]
    targets: Callable[[np.random.Generator, tuple[int, ...], Params, bool], np.ndarray]
    predictions: Callable[[np.random.Generator, np.ndarray, Params], np.ndarray]
    kinks: Callable[[Params], list[float]] = field(default=lambda params: [])


def _maybe_default(rng: np.random.Generator, key: str, value: Any) -> Params:
    """``{key: value}``, or ``{}`` three times in ten so the service's defaults are exercised."""
    return {} if rng.random() < 0.3 else {key: value}


def _normal_targets(rng, shape, params, smooth):
    return rng.normal(0.0, 3.0, shape)


def _near_targets(rng, targets, params):
    """Predictions at a distance of every order from 0.01 to ~10 (and ~1000 once in a while)."""
    scale = rng.choice([0.1, 1.0, 3.0, 1000.0], p=[0.3, 0.3, 0.3, 0.1])
    return targets + rng.normal(0.0, scale, targets.shape)


def _huber_params(rng):
    return _maybe_default(rng, "delta", float(rng.uniform(0.1, 3.0)))


def _huber_predictions(rng, targets, params):
    # Distances spread around delta, so both branches are common.
    delta = params.get("delta", 1.0)
    return targets + rng.normal(0.0, 1.5 * delta, targets.shape)


def _smooth_l1_params(rng):
    beta = 0.0 if rng.random() < 0.2 else float(rng.uniform(0.1, 3.0))
    return _maybe_default(rng, "beta", beta)


def _smooth_l1_predictions(rng, targets, params):
    beta = params.get("beta", 1.0)
    return targets + rng.normal(0.0, 1.5 * max(beta, 0.5), targets.shape)


def _smooth_l1_kinks(params):
    beta = params.get("beta", 1.0)
    return [0.0] if beta == 0.0 else [beta]


def _msle_targets(rng, shape, params, smooth):
    # The domain is (-1, inf); (-0.9, 5) keeps 1 + y >= 0.1 so the slopes stay moderate.
    return rng.uniform(-0.9, 5.0, shape)


def _msle_predictions(rng, targets, params):
    return rng.uniform(-0.9, 5.0, targets.shape)


def _mape_params(rng):
    eps = 1e-7 if rng.random() < 0.5 else float(10.0 ** rng.uniform(-9, -2))
    return _maybe_default(rng, "eps", eps)


def _mape_targets(rng, shape, params, smooth):
    magnitude = rng.uniform(0.5, 5.0, shape)
    targets = magnitude * rng.choice([-1.0, 1.0], shape)
    if not smooth:
        # Zeros and values below eps exercise the max(|y|, eps) floor.
        special = rng.random(shape)
        targets[special < 0.1] = 0.0
        tiny = (special >= 0.1) & (special < 0.15)
        targets[tiny] = rng.uniform(-1e-9, 1e-9, int(tiny.sum()))
    return targets


def _mape_predictions(rng, targets, params):
    return targets + rng.normal(0.0, 1.0, targets.shape)


def _quantile_params(rng):
    return _maybe_default(rng, "quantile", float(rng.uniform(0.01, 0.99)))


def _poisson_params(rng):
    params: Params = {}
    if rng.random() < 0.7:
        params["log_input"] = bool(rng.random() < 0.5)
    if rng.random() < 0.5:
        params["eps"] = float(10.0 ** rng.uniform(-10, -3))
    return params


def _poisson_targets(rng, shape, params, smooth):
    # Counts.
    return rng.integers(0, 9, shape).astype(np.float64)


def _poisson_predictions(rng, targets, params):
    if params.get("log_input", True):
        return rng.uniform(-3.0, 2.5, targets.shape)  # log-rates
    return rng.uniform(0.05, 8.0, targets.shape)  # rates


def _at_zero(params):
    return [0.0]


SAMPLERS: dict[str, Sampler] = {
    "mse": Sampler(lambda rng: {}, _normal_targets, _near_targets),
    "mae": Sampler(lambda rng: {}, _normal_targets, _near_targets, _at_zero),
    "huber": Sampler(
        _huber_params, _normal_targets, _huber_predictions, lambda p: [p.get("delta", 1.0)]
    ),
    "smooth_l1": Sampler(
        _smooth_l1_params, _normal_targets, _smooth_l1_predictions, _smooth_l1_kinks
    ),
    "log_cosh": Sampler(lambda rng: {}, _normal_targets, _near_targets),
    "msle": Sampler(lambda rng: {}, _msle_targets, _msle_predictions),
    "mape": Sampler(_mape_params, _mape_targets, _mape_predictions, _at_zero),
    "quantile": Sampler(_quantile_params, _normal_targets, _near_targets, _at_zero),
    "poisson_nll": Sampler(_poisson_params, _poisson_targets, _poisson_predictions),
}


def random_shape(rng: np.random.Generator, rank: int, max_elements: int = 96) -> tuple[int, ...]:
    """(N, d1, ...) with N >= 1 and every axis >= 1, at most ``max_elements`` entries."""
    while True:
        shape = (int(rng.integers(1, 7)), *(int(rng.integers(1, 5)) for _ in range(rank - 1)))
        if int(np.prod(shape)) <= max_elements:
            return shape


def random_sample_weight(rng: np.random.Generator, n_samples: int) -> np.ndarray:
    """Non-negative weights: some 0, some small integers, the rest real numbers in (0, 3)."""
    kind = rng.random(n_samples)
    weights = rng.uniform(0.0, 3.0, n_samples)
    weights[kind < 0.15] = 0.0
    integers = (kind >= 0.15) & (kind < 0.5)
    weights[integers] = rng.integers(1, 4, int(integers.sum()))
    return weights


def random_mask(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values in [0, 1]: some exactly 0, some exactly 1, the rest in between."""
    kind = rng.random(shape)
    mask = rng.uniform(0.0, 1.0, shape)
    mask[kind < 0.2] = 0.0
    mask[kind > 0.6] = 1.0
    return mask


def away_from_kinks(
    rng: np.random.Generator, sampler: Sampler, targets: np.ndarray, params: Params
) -> np.ndarray:
    """Predictions whose |p - y| is at least KINK_MARGIN from every kink of the loss."""
    predictions = sampler.predictions(rng, targets, params)
    for _ in range(100):
        distance = np.abs(predictions - targets)
        near = np.zeros(predictions.shape, dtype=bool)
        for kink in sampler.kinks(params):
            near |= np.abs(distance - kink) < KINK_MARGIN
        if not near.any():
            return predictions
        predictions[near] = sampler.predictions(rng, targets, params)[near]
    raise RuntimeError("could not draw predictions away from the kinks")


def random_case(
    name: str,
    rng: np.random.Generator,
    *,
    rank: int,
    weighted: bool = False,
    masked: bool = False,
    smooth: bool = False,
    max_elements: int = 96,
) -> Case:
    """A valid random input for loss ``name``: C-contiguous float64 arrays."""
    sampler = SAMPLERS[name]
    params = sampler.params(rng)
    shape = random_shape(rng, rank, max_elements)
    targets = np.ascontiguousarray(sampler.targets(rng, shape, params, smooth), dtype=np.float64)
    if smooth:
        predictions = away_from_kinks(rng, sampler, targets, params)
    else:
        predictions = sampler.predictions(rng, targets, params)
    predictions = np.ascontiguousarray(predictions, dtype=np.float64)
    sample_weight = random_sample_weight(rng, shape[0]) if weighted else None
    mask = random_mask(rng, shape) if masked else None
    return Case(name, predictions, targets, params, sample_weight, mask)


def compute_case(case: Case, reduction: str = "mean", with_gradient: bool = True) -> LossResult:
    """The service's result for a case (the engine entry point every route goes through)."""
    spec = REGISTRY[case.name]
    inputs = Inputs(
        predictions=case.predictions,
        targets=case.targets,
        sample_weight=case.sample_weight,
        mask=case.mask,
    )
    return compute(spec, inputs, spec.params(**case.params), reduction, with_gradient)
