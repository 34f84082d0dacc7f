"""Cases for the registry-driven property tests: seeded generators, a close-enough comparison,
and weighted batches of any loss with a chosen number of samples.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from tests.reference import element_weights
from tests.strategies.samplers import Case, kinds_of, random_case, rank_near, select_samples

LOSS_NAMES = sorted(REGISTRY)
REDUCTIONS = ("mean", "sum")
SEEDS = (0, 1, 2)
RELATIVE = 1e-12


def rng_for(*parts: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("-".join(map(str, parts)).encode()))


def assert_close(got, expected, what: str) -> None:
    """Equal up to 1e-12 relative to the largest value compared (plus a 1e-300 floor)."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0.0)), float(np.abs(got).max(initial=0.0)))
    error = float(np.abs(got - expected).max(initial=0.0))
    assert error <= RELATIVE * scale + 1e-300, f"{what}: {got!r} != {expected!r}"


def with_arrays(case: Case, **changes) -> Case:
    """A copy of ``case`` with some arrays replaced (made C-contiguous float64)."""
    arrays = {
        key: None if value is None else np.ascontiguousarray(value, dtype=np.float64)
        for key, value in changes.items()
    }
    return dataclasses.replace(case, **arrays)


def kind_for(name: str, *parts: object) -> str:
    """One of the loss's input kinds, by a hash of ``parts`` (both kinds over a test's cases)."""
    kinds = kinds_of(name)
    return kinds[zlib.crc32("-".join(map(str, parts)).encode()) % len(kinds)]


def batch_case(
    name: str, *parts: object, n_samples: int = 5, masked: bool = True, rank: int = 3
) -> Case:
    """A weighted (and masked) case with exactly ``n_samples`` samples, of the rank the loss
    takes nearest to ``rank``, repeating a random case with at least two samples of non-zero
    weight inside (mask, class weight, ignored labels)."""
    rng = rng_for(name, *parts)
    kind = kind_for(name, *parts)
    while True:
        case = random_case(
            name, rng, rank=rank_near(name, rank), kind=kind, weighted=True, masked=masked
        )
        inner = element_weights(name, case.predictions, case.targets, case.params, case.mask)
        if np.count_nonzero(np.reshape(inner, (case.n_samples, -1)).sum(axis=1) > 0) >= 2:
            break
    index = np.arange(n_samples) % case.n_samples
    return select_samples(case, index, sample_weight=rng.uniform(0.5, 2.0, n_samples))
