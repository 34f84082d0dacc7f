"""The two calls ``POST /v1/evaluate`` makes: :func:`parse_metrics` (stage 1, the request's
``metrics`` list) and :func:`compute_metrics` (the values, or a 422 naming the metric)."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from service.scores.catalogue import METRICS
from service.scores.params import MetricRequest
from service.scores.readings import Entries
from service.scores.state import State, Undefined
from service.validation.contracts import Inputs
from service.validation.errors import MAX_LISTED_ERRORS, NonFiniteResult, StructureError, body_loc

ITEM_FIELDS = ("name", "params")
SHAPE_OF_A_METRIC = 'a metric is a name or {"name": ..., "params": {...}}'


def parse_metrics(raw: Any) -> list[MetricRequest]:
    """Validate the request's ``metrics`` value (``None`` = no metrics).

    Each item is a known metric name, or an object with ``name`` and optional ``params``
    validated by the metric's params model. Names are unique: the response is keyed by name.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise StructureError(
            body_loc("metrics"),
            f"metrics must be a list ({SHAPE_OF_A_METRIC}), got {_kind(raw)}",
        )
    requests: list[MetricRequest] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(raw):
        request = parse_metric(item, index)
        if request.name in first_index:
            raise StructureError(
                request.loc,
                f"metric {request.name!r} is listed twice (metrics[{first_index[request.name]}] "
                f"and metrics[{index}]); the response is keyed by name, so list each metric once",
            )
        first_index[request.name] = index
        requests.append(request)
    return requests


def parse_metric(item: Any, index: int) -> MetricRequest:
    """One item of ``metrics``: a name, or ``{"name", "params"}``."""
    loc = body_loc("metrics", index)
    name: Any
    if isinstance(item, str):
        name, params = item, None
    elif isinstance(item, dict):
        unknown = [key for key in item if key not in ITEM_FIELDS]
        if unknown:
            raise StructureError(
                [*loc, unknown[0]],
                f"unknown field {unknown[0]!r} in metrics[{index}]; allowed: name, params",
            )
        name, params = item.get("name"), item.get("params")
        if not isinstance(name, str):
            what = "is required" if name is None else f"must be a string, got {_kind(name)}"
            raise StructureError([*loc, "name"], f"metrics[{index}].name {what}")
    else:
        raise StructureError(loc, f"metrics[{index}]: {SHAPE_OF_A_METRIC}, got {_kind(item)}")
    spec = METRICS.get(name)
    if spec is None:
        raise StructureError(loc, _unknown_metric_message(name))
    if params is not None and not isinstance(params, dict):
        raise StructureError(
            [*loc, "params"], f"{name} params must be an object, got {_kind(params)}"
        )
    _refuse_unknown_params(params, name, spec.params.model_fields, loc)
    try:
        validated = spec.params.model_validate(params or {})
    except ValidationError as error:
        raise _params_error(error, name, spec.params.model_fields, loc) from None
    return MetricRequest(name=name, params=validated, index=index)


def compute_metrics(requests: list[MetricRequest], inputs: Inputs) -> dict[str, float]:
    """``{name: value}`` in request order; every value a finite float.

    A metric that does not fit the payload, or has no value on it, raises a 422 at
    ``["body", "metrics", i]`` (see :mod:`service.scores.readings`); a value that overflows
    float64, NonFiniteResult.
    """
    values, _ = metric_values(requests, metric_states(requests, inputs).whole, strict=True)
    return {name: value for name, value in values.items() if value is not None}  # (strict)


@dataclass(frozen=True)
class MetricStates:
    """Each metric's state over the whole payload and, with groups, over each slice."""

    whole: list[State]
    groups: list[list[State]] | None = None


def metric_states(
    requests: list[MetricRequest],
    inputs: Inputs,
    groups: np.ndarray | None = None,
    group_count: int = 0,
) -> MetricStates:
    """Read, validate and summarize every metric (a 422 when one does not fit the payload);
    with ``groups`` (the slice index of every sample, in ``[0, group_count)``) each slice's
    states too, from the same entries."""
    whole: list[State] = []
    sliced: list[list[State]] | None = None if groups is None else [[] for _ in range(group_count)]
    for request in requests:
        spec = METRICS[request.name]
        with np.errstate(all="ignore"):
            entries = spec.read(inputs, request)
            whole.append(spec.build(entries))
            if groups is not None and sliced is not None:
                for index, part in enumerate(_slices(entries, groups, group_count)):
                    sliced[index].append(spec.build(part))
    return MetricStates(whole, sliced)


def _slices(entries: Entries, groups: np.ndarray, group_count: int) -> list[Entries]:
    """The entries of each slice (stable: in their order within the slice)."""
    owner = groups[entries.samples()]
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(group_count + 1))
    parts = []
    for index in range(group_count):
        take = order[bounds[index] : bounds[index + 1]]
        parts.append(
            Entries(
                entries.truth[take],
                entries.guess[take],
                entries.weight[take],
                entries.per_sample,
                None,
                entries.multiclass,
            )
        )
    return parts


def metric_values(
    requests: list[MetricRequest], states: list[State], *, strict: bool
) -> tuple[dict[str, float | None], dict[str, str]]:
    """``{name: value}`` and ``{name: reason}`` for those without one (``None`` values).
    ``strict`` raises instead (a whole request without state: a 422 as before). A value that
    overflows float64 is always a 422."""
    values: dict[str, float | None] = {}
    undefined: dict[str, str] = {}
    for request, of in zip(requests, states, strict=True):
        try:
            with np.errstate(all="ignore"):
                value = METRICS[request.name].value(of, request)
        except Undefined as reason:
            if strict:
                raise
            values[request.name] = None
            undefined[request.name] = reason.detail
            continue
        if not math.isfinite(value):
            raise NonFiniteResult(
                request.loc,
                f"{request.name} overflows float64 on these values; scale predictions, targets "
                "or sample_weight down",
            )
        values[request.name] = value
    return values, undefined


def _unknown_metric_message(name: Any) -> str:
    known = sorted(METRICS)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown metric {name!r}{hint} Known metrics: {', '.join(known)}"


def _refuse_unknown_params(
    params: Any, name: str, fields: dict[str, Any], loc: list[str | int]
) -> None:
    """Many unknown keys are refused in one pass, before Pydantic builds an error per key."""
    if not isinstance(params, dict) or len(params) <= MAX_LISTED_ERRORS:
        return
    unknown = [key for key in params if key not in fields]
    if len(unknown) > MAX_LISTED_ERRORS:
        items = [_unknown_param(key, name, fields, loc) for key in unknown[:MAX_LISTED_ERRORS]]
        first, *more = items
        raise StructureError(first["loc"], first["msg"], more, len(unknown) - MAX_LISTED_ERRORS)


def _unknown_param(
    key: str, name: str, fields: dict[str, Any], loc: list[str | int]
) -> dict[str, Any]:
    allowed = ", ".join(fields) or "none"
    return {
        "loc": [*loc, "params", key],
        "msg": f"unknown parameter {key!r} for {name}; allowed: {allowed}",
    }


def _params_error(
    error: ValidationError, name: str, fields: dict[str, Any], loc: list[str | int]
) -> StructureError:
    """Pydantic's errors at ``["body", "metrics", i, "params", ...]``, saying what was got."""
    items = []
    for item in error.errors(include_url=False):
        where = [*loc, "params", *item["loc"]]
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            items.append(_unknown_param(key, name, fields, loc))
            continue
        shown = repr(item.get("input"))
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        msg = f"{name} params.{key}: {item['msg']}, got {shown}"
        items.append({"loc": where, "msg": msg})
    first, *more = items[:MAX_LISTED_ERRORS]
    return StructureError(first["loc"], first["msg"], more, max(0, len(items) - MAX_LISTED_ERRORS))


def _kind(value: Any) -> str:
    """How messages name a JSON value's type."""
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
