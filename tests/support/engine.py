"""Running the service's engine on a test case: the one place the tests build ``Inputs``.

:func:`compute_case` scores a :class:`tests.strategies.samplers.Case` through the engine entry
point every route goes through; :func:`run_loss` does so on literal arrays (a loss or an alias);
:func:`element_losses_by_mask` reads every element loss of a structured loss off the service.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

import service.losses  # noqa: F401  (registers every loss)
from service.compute.engine import LossResult, compute
from service.losses.registry import REGISTRY, canonical_name
from service.validation.contracts import Inputs
from tests.reference import element_grid
from tests.strategies.samplers import Case

Params = dict[str, Any]


def element_losses_by_mask(case: Case) -> np.ndarray:
    """The service's loss of every element of a structured loss (grid (N, K) flattened): for
    each k, per_sample under a mask that keeps element k of every sample alone. Params that
    only weigh (class_weight, include_background) are dropped, so no element weighs 0 but an
    ignored token."""
    params = {
        key: value
        for key, value in case.params.items()
        if key not in ("class_weight", "include_background")
    }
    grid = element_grid(case.name, case.predictions.shape, params)
    per_sample = int(np.prod(grid[1:]))
    losses = np.zeros((case.n_samples, per_sample))
    for k in range(per_sample):
        mask = np.zeros((case.n_samples, per_sample))
        mask[:, k] = 1.0
        alone = replace(case, params=params, sample_weight=None, mask=mask.reshape(grid))
        losses[:, k] = compute_case(alone, with_gradient=False).per_sample
    return losses.reshape(-1)


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


def run_loss(
    name: str,
    predictions,
    targets,
    params: Params | None = None,
    reduction: str = "sum",
    sample_weight=None,
    mask=None,
) -> LossResult:
    """The service's result on literal arrays (nested lists or numpy), ``name`` a loss or an
    alias; ``reduction`` "sum" by default, so a hand-computed gradient is each element's slope
    times its weight."""

    def as_array(values):
        return None if values is None else np.ascontiguousarray(values, dtype=np.float64)

    canonical = canonical_name(name)
    assert canonical is not None, f"unknown loss {name!r}"
    case = Case(
        canonical,
        as_array(predictions),
        as_array(targets),
        dict(params or {}),
        as_array(sample_weight),
        as_array(mask),
    )
    return compute_case(case, reduction)
