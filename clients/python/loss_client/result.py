"""The merge response of ``POST /v1/evaluate/merge`` as typed objects; ``raw`` keeps it whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TermResult:
    """One term over the whole set (or a slice): its cost, ``sum`` (Σ w·l), ``weight_sum``
    (Σ w) and ``count`` (samples). ``loss`` and ``weight`` are those the service named."""

    cost: float
    sum: float
    weight_sum: float
    count: int
    loss: str | None = None
    weight: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TermResult:
        return cls(
            cost=float(data["cost"]),
            sum=float(data["sum"]),
            weight_sum=float(data["weight_sum"]),
            count=int(data["count"]),
            loss=data.get("loss"),
            weight=None if data.get("weight") is None else float(data["weight"]),
        )


@dataclass(frozen=True)
class GroupResult:
    """One slice (``groups`` label): what ``/v1/evaluate`` gives for that slice alone."""

    count: int
    weight_sum: float
    cost: float
    terms: dict[str, TermResult]
    metrics: dict[str, float | None]
    undefined: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupResult:
        return cls(
            count=int(data["count"]),
            weight_sum=float(data["weight_sum"]),
            cost=float(data["cost"]),
            terms=_terms(data.get("terms")),
            metrics=_metrics(data.get("metrics")),
            undefined=dict(data.get("undefined") or {}),
        )


@dataclass(frozen=True)
class Worst:
    """A sample among the ``top_k`` largest total per-sample losses (global index)."""

    index: int
    value: float


@dataclass(frozen=True)
class Result:
    """The whole set's evaluation. ``metrics`` values are ``None`` where a metric is undefined
    (the reason is in ``undefined``); ``raw`` is the service's answer as sent (its ``state``
    included, which another merge accepts)."""

    cost: float
    count: int
    reduction: str
    terms: dict[str, TermResult]
    metrics: dict[str, float | None]
    undefined: dict[str, str]
    groups: dict[str, GroupResult]
    top_k: list[Worst]
    raw: dict[str, Any]
    shards: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any], shards: int = 0) -> Result:
        return cls(
            cost=float(data["cost"]),
            count=int(data["count"]),
            reduction=str(data.get("reduction", "mean")),
            terms=_terms(data.get("terms")),
            metrics=_metrics(data.get("metrics")),
            undefined=dict(data.get("undefined") or {}),
            groups={
                str(label): GroupResult.from_json(group)
                for label, group in (data.get("groups") or {}).items()
            },
            top_k=[
                Worst(index=int(worst["index"]), value=float(worst["value"]))
                for worst in data.get("top_k") or []
            ],
            raw=data,
            shards=shards,
        )

    @property
    def state(self) -> dict[str, Any] | None:
        """The merged state (opaque): merge it with others' through ``Client.merge``."""
        return self.raw.get("state")


def _terms(data: dict[str, Any] | None) -> dict[str, TermResult]:
    return {label: TermResult.from_json(term) for label, term in (data or {}).items()}


def _metrics(data: dict[str, Any] | None) -> dict[str, float | None]:
    return {name: None if value is None else float(value) for name, value in (data or {}).items()}
