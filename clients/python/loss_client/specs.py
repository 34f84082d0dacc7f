"""Terms and metrics as the command line writes them, and as the Python API takes them.

- ``--term`` is ``loss[:params-json[:weight]]``: ``mse``, ``huber:{"delta": 0.5}``,
  ``'dice:{"mode": "binary"}:0.5'``, ``mse::2`` (no params, weight 2); or a whole JSON term
  object (``{"loss": "mse", "label": "a"}``).
- ``--metric`` is ``name[:params-json]``: ``roc_auc``, ``'f1:{"from_logits": true}'``; or a
  whole JSON object (``{"name": "f1", "params": {...}}``).

The params are read as one JSON value from just after the name's colon, so they may hold
colons of their own (``{"expression": "where(y > 0.5, 2, 1)"}`` or a URL in a string).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

TERM_KEYS = frozenset({"loss", "params", "weight", "label"})
METRIC_KEYS = frozenset({"name", "params"})


class SpecError(ValueError):
    """A ``--term`` or ``--metric`` that does not parse; the message is one line."""


def parse_term(text: str) -> dict[str, Any]:
    """``loss[:params-json[:weight]]`` (or a JSON object) to a term of ``/v1/evaluate``."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return term_from(_json_object(stripped, text, "--term"))
    name, params, rest = _name_and_params(text, "--term")
    term: dict[str, Any] = {"loss": name}
    if params:
        term["params"] = params
    if rest is not None:
        term["weight"] = _weight(rest, text)
    return term


def parse_metric(text: str) -> str | dict[str, Any]:
    """``name[:params-json]`` (or a JSON object) to a metric of ``/v1/evaluate``."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return metric_from(_json_object(stripped, text, "--metric"))
    name, params, rest = _name_and_params(text, "--metric")
    if rest is not None:
        raise SpecError(f"--metric {text!r}: unexpected {':' + rest!r} after the params")
    return {"name": name, "params": params} if params else name


def term_from(term: str | Mapping[str, Any]) -> dict[str, Any]:
    """A term of the Python API (a name or a mapping) as the service reads it."""
    if isinstance(term, str):
        if not term.strip():
            raise SpecError("a term needs a loss name")
        return {"loss": term.strip()}
    if not isinstance(term, Mapping):
        raise SpecError(f"a term is a loss name or a mapping, not {type(term).__name__}")
    unknown = set(term) - TERM_KEYS
    if unknown:
        raise SpecError(
            f"term {dict(term)!r}: unknown key(s) {sorted(unknown)}; known: loss, "
            "params, weight, label"
        )
    if not isinstance(term.get("loss"), str) or not term["loss"]:
        raise SpecError(f"term {dict(term)!r}: 'loss' must name a loss")
    return {key: value for key, value in term.items() if value is not None}


def metric_from(metric: str | Mapping[str, Any]) -> str | dict[str, Any]:
    """A metric of the Python API (a name or a mapping) as the service reads it."""
    if isinstance(metric, str):
        if not metric.strip():
            raise SpecError("a metric needs a name")
        return metric.strip()
    if not isinstance(metric, Mapping):
        raise SpecError(f"a metric is a name or a mapping, not {type(metric).__name__}")
    unknown = set(metric) - METRIC_KEYS
    if unknown:
        raise SpecError(
            f"metric {dict(metric)!r}: unknown key(s) {sorted(unknown)}; known: name, params"
        )
    if not isinstance(metric.get("name"), str) or not metric["name"]:
        raise SpecError(f"metric {dict(metric)!r}: 'name' must name a metric")
    return {key: value for key, value in metric.items() if value is not None}


def terms_from(terms: Iterable[str | Mapping[str, Any]] | str) -> list[dict[str, Any]]:
    if isinstance(terms, str | Mapping):
        terms = [terms]
    found = [term_from(term) for term in terms]
    if not found:
        raise SpecError("at least one term is needed (a loss to score)")
    return found


def metrics_from(metrics: Iterable[str | Mapping[str, Any]] | str | None) -> list:
    if metrics is None:
        return []
    if isinstance(metrics, str | Mapping):
        metrics = [metrics]
    return [metric_from(metric) for metric in metrics]


def _name_and_params(text: str, option: str) -> tuple[str, dict[str, Any], str | None]:
    """The name, the params (``{}`` when absent) and what follows them after a colon."""
    name, colon, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise SpecError(f"{option} {text!r}: a name comes first")
    if not colon:
        return name, {}, None
    if rest.startswith(":"):  # no params, then more: "mse::2"
        return name, {}, rest[1:]
    if not rest.strip():
        raise SpecError(f"{option} {text!r}: nothing after the colon")
    stripped = rest.lstrip()
    try:
        params, end = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as error:
        raise SpecError(
            f"{option} {text!r}: the params are not valid JSON ({error.msg}, at character "
            f"{error.pos + 1} of {stripped!r})"
        ) from None
    if not isinstance(params, dict):
        raise SpecError(f'{option} {text!r}: the params must be a JSON object, like {{"k": 1}}')
    after = stripped[end:].strip()
    if not after:
        return name, params, None
    if not after.startswith(":"):
        raise SpecError(f"{option} {text!r}: unexpected {after!r} after the params")
    return name, params, after[1:]


def _weight(text: str, whole: str) -> float:
    try:
        weight = float(text)
    except ValueError:
        raise SpecError(f"--term {whole!r}: the weight {text.strip()!r} is not a number") from None
    if not math.isfinite(weight):
        raise SpecError(f"--term {whole!r}: the weight must be finite")
    return weight


def _json_object(stripped: str, text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as error:
        raise SpecError(f"{option} {text!r}: not valid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise SpecError(f"{option} {text!r}: expected a JSON object")
    return value
