"""The registry: every loss declared once, as data.

A :class:`LossSpec` holds everything the service knows about a loss. Routes, the catalogue,
OpenAPI operations and examples, start-up warm-up and the generic tests all iterate
:data:`REGISTRY`; adding a loss is a kernel, a ``register(LossSpec(...))`` and a naive
reference in the tests.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from service.validation.errors import UnknownLoss
from service.validation.structure import Params

if TYPE_CHECKING:
    from service.validation.contracts import Batch, Contract, Inputs

__all__ = ["REGISTRY", "Formula", "LossSpec", "Params", "canonical_name", "lookup", "register"]


@dataclass(frozen=True)
class Formula:
    """Plain-text formulas shown in the catalogue and the OpenAPI description."""

    loss: str
    gradient: str


@dataclass(frozen=True, eq=False)  # identity hash: specs key caches
class LossSpec:
    """Everything about one loss.

    ``extras(batch, losses, weights, reduced, params)`` returns loss-specific response fields.
    ``kernel`` is called as ``kernel(*batch.kernel_arrays, scale, losses, gradient, **options)``
    and fills the two outputs (see :mod:`service.kernels`): each option the kernel declares after
    ``gradient`` is the params field of the same name, unless ``kernel_args(params)`` gives it
    by name (a derived value, or a field named otherwise): :meth:`kernel_arguments`. ``domain`` is the
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
    example: Mapping[str, Any]
    aliases: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    notes: str = ""
    properties: frozenset[str] = frozenset()
    kernel_args: Callable[[Any], Mapping[str, Any]] | None = None
    domain: Callable[[Batch, Any], None] | None = None
    extras: Callable[..., dict[str, Any]] | None = None
    description: str = field(default="", repr=False)
    #: Estimated seconds of one core per prediction entry for the whole computation
    #: (validation, kernel with gradient, reduction), as ``bench/work.py`` measures it; ``work``
    #: replaces it for losses whose cost is not proportional to the entries (CTC, custom).
    entry_seconds: float = 10e-9
    work: Callable[[Inputs, Any], float] | None = None

    def kernel_arguments(self, params: Any) -> tuple[Any, ...]:
        """The kernel's options after ``gradient``, in its declared order, by name."""
        names = kernel_options(self.kernel)
        if self.kernel_args is None:
            return tuple([getattr(params, name) for name in names])
        given = self.kernel_args(params)
        for name in given:
            if name not in names:
                raise TypeError(f"{self.name}: the kernel takes no option {name!r}")
        return tuple([given[name] if name in given else getattr(params, name) for name in names])


@cache
def kernel_options(kernel: Callable[..., None]) -> tuple[str, ...]:
    """The names of a kernel's arguments after ``gradient`` (its options)."""
    names = list(inspect.signature(getattr(kernel, "py_func", kernel)).parameters)
    return tuple(names[names.index("gradient") + 1 :])


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
