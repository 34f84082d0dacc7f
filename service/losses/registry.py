"""The registry: every loss declared once, as data.

A :class:`LossSpec` holds everything the service knows about a loss. Routes, the catalogue,
OpenAPI operations and examples, start-up warm-up and the generic tests all iterate
:data:`REGISTRY`; adding a loss is a kernel, a ``register(LossSpec(...))`` and a naive
reference in the tests.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from service.validation.errors import UnknownLoss

if TYPE_CHECKING:
    from service.validation.contracts import Batch, Contract, Inputs


class Params(BaseModel):
    """Base of every loss's params model: unknown keys are an error, never ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


@dataclass(frozen=True)
class Formula:
    """Plain-text formulas shown in the catalogue and the OpenAPI description."""

    loss: str
    gradient: str


@dataclass(frozen=True, eq=False)  # identity hash: specs key caches
class LossSpec:
    """Everything about one loss.

    ``extras(batch, losses, weights, reduced, params)`` returns loss-specific response fields.
    ``kernel`` is called as ``kernel(*batch.kernel_arrays, scale, losses, gradient,
    *kernel_args(params))`` and fills the two outputs (see :mod:`service.kernels`). ``domain`` is the
    loss's own value checks, run after the shape contract. ``extras`` adds loss-specific
    response fields. ``properties`` states facts the generic tests check:
    ``"nonnegative"`` (every element loss >= 0) and ``"zero_at_target"`` (0 when the
    prediction equals the target). ``entry_seconds`` / ``work`` estimate the cost before it
    runs (:mod:`service.compute.work`).
    """

    name: str
    family: str
    summary: str
    formula: Formula
    params: type[Params]
    contract: Contract
    kernel: Callable[..., None]
    kernel_args: Callable[[Any], tuple[Any, ...]]
    example: Mapping[str, Any]
    aliases: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    notes: str = ""
    properties: frozenset[str] = frozenset()
    domain: Callable[[Batch, Any], None] | None = None
    extras: Callable[..., dict[str, Any]] | None = None
    description: str = field(default="", repr=False)
    #: Estimated seconds of one core per prediction entry for the whole computation
    #: (validation, kernel with gradient, reduction), as ``bench/work.py`` measures it; ``work``
    #: replaces it for losses whose cost is not proportional to the entries (CTC, custom).
    entry_seconds: float = 10e-9
    work: Callable[[Inputs, Any], float] | None = None


REGISTRY: dict[str, LossSpec] = {}
_ALIASES: dict[str, str] = {}


def register(spec: LossSpec) -> LossSpec:
    """Add a loss; names and aliases share one namespace and must be unique."""
    for name in (spec.name, *spec.aliases):
        if name in REGISTRY or name in _ALIASES:
            raise ValueError(f"loss name {name!r} is already registered")
    REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def canonical_name(name: str) -> str | None:
    if name in REGISTRY:
        return name
    return _ALIASES.get(name)


def lookup(name: str) -> LossSpec:
    """The spec for a name or alias; 404 listing the close matches otherwise."""
    canonical = canonical_name(name)
    if canonical is not None:
        return REGISTRY[canonical]
    known = sorted([*REGISTRY, *_ALIASES])
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownLoss(
        f"unknown loss {name!r}{hint} GET /v1/losses lists all {len(REGISTRY)} losses.",
        errors=[{"loc": ["path", "name"], "msg": f"unknown loss {name!r}", "close_matches": close}],
    )
