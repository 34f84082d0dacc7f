"""An evaluation's summary as JSON: the ``state`` of ``POST /v1/evaluate`` (written) and the
``states`` of ``POST /v1/evaluate/merge`` (read back and checked), and the parts of both
answers rendered from a summary (terms, metrics, slices, worst samples).

Layout of a state (clients treat it as opaque; the README documents it)::

    {"format": "loss-service.evaluation-state", "version": 1,
     "definition": {"reduction", "terms": [{"label", "loss", "weight", "params"}],
                    "metrics": [{"name", "params"}], "groups": bool, "top_k": k | null},
     "count", "weight_sum",
     "terms": [{"sum", "weight_sum", "count"}],
     "metrics": [{"kind": "labels", "labels", "truth", "guess", "weight", "count",
                  "multiclass"}
                 | {"kind": "ranks", "scores", "positive", "negative", "positives", "negatives"}
                 | {"kind": "moments", "count", "weight", "mean", "m2", "sse", "sae",
                    "low", "high"}],
     "groups": [{"label", "count", "weight_sum", "terms", "metrics"}],   (with groups)
     "top_k": [{"index", "value"}]}                                       (with top_k)

A state read back is checked as any input is: its structure, finite numbers, lengths that
agree, weights >= 0, distinct ascending scores and labels; a broken one is a 422 that points
into ``states``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from service.api.codec import to_array
from service.api.jsonread import JsonArray
from service.api.v1.fields import NumberArray
from service.compute.summary import FORMAT, VERSION, Slice, Summary, TermSums, values_of
from service.scores import METRICS, MetricRequest, parse_metrics
from service.scores.state import Labels, Moments, Ranks, State
from service.validation.errors import ServiceError, StructureError
from service.validation.structure import structure_error

Finite = Annotated[float, Strict(), Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Strict(), Field(ge=0)]
Index = Annotated[int, Strict(), Field(ge=0)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelsJson(_Closed):
    kind: Literal["labels"]
    labels: NumberArray
    truth: NumberArray
    guess: NumberArray
    weight: NumberArray
    count: Count
    multiclass: bool


class RanksJson(_Closed):
    kind: Literal["ranks"]
    scores: NumberArray
    positive: NumberArray
    negative: NumberArray
    positives: Count
    negatives: Count


#: The states' arrays, read from a large body straight into NumPy (never as Python lists).
STATE_ARRAYS = frozenset(
    (*prefix, "*", "metrics", "*", key)
    for prefix in ((), ("*", "groups"))
    for key in ("labels", "truth", "guess", "weight", "scores", "positive", "negative")
)
#: Integers that float64 holds exactly.
EXACT = 2**53


class MomentsJson(_Closed):
    kind: Literal["moments"]
    count: Count
    weight: NonNegative
    mean: Finite
    m2: NonNegative
    sse: NonNegative
    sae: NonNegative
    low: Finite | None
    high: Finite | None


MetricJson = Annotated[LabelsJson | RanksJson | MomentsJson, Field(discriminator="kind")]


class TermJson(_Closed):
    sum: Finite
    weight_sum: NonNegative
    count: Count


class SliceJson(_Closed):
    label: str
    count: Count
    weight_sum: NonNegative
    terms: list[TermJson]
    metrics: list[MetricJson]


class WorstJson(_Closed):
    index: Index
    value: Finite


class TermDefinition(_Closed):
    label: str
    loss: str
    weight: Finite
    params: dict[str, Any]


class MetricDefinition(_Closed):
    name: str
    params: dict[str, Any]


class Definition(_Closed):
    reduction: Literal["mean", "sum"]
    terms: list[TermDefinition] = Field(min_length=1)
    metrics: list[MetricDefinition]
    groups: bool
    top_k: Annotated[int, Strict(), Field(ge=1)] | None


class StateJson(_Closed):
    format: Literal["loss-service.evaluation-state"]
    version: Literal[1]
    definition: Definition
    count: Count
    weight_sum: NonNegative
    terms: list[TermJson]
    metrics: list[MetricJson]
    groups: list[SliceJson] | None = None
    top_k: list[WorstJson] | None = None


# ---- writing -------------------------------------------------------------------------------


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def metric_json(state: State) -> dict[str, Any]:
    if isinstance(state, Labels):
        return {
            "kind": "labels",
            "labels": state.labels,
            "truth": state.truth,
            "guess": state.guess,
            "weight": state.weight,
            "count": state.count,
            "multiclass": state.multiclass,
        }
    if isinstance(state, Ranks):
        return {
            "kind": "ranks",
            "scores": state.scores,
            "positive": state.positive,
            "negative": state.negative,
            "positives": state.positives,
            "negatives": state.negatives,
        }
    return {
        "kind": "moments",
        "count": state.count,
        "weight": state.weight,
        "mean": state.mean,
        "m2": state.m2,
        "sse": state.sse,
        "sae": state.sae,
        "low": _number(state.low),
        "high": _number(state.high),
    }


def _slice_json(part: Slice) -> dict[str, Any]:
    return {
        "count": part.count,
        "weight_sum": part.weight_sum,
        "terms": [
            {"sum": term.sum, "weight_sum": term.weight_sum, "count": term.count}
            for term in part.terms
        ],
        "metrics": [metric_json(state) for state in part.metrics],
    }


def state_json(summary: Summary) -> dict[str, Any]:
    """The summary as the answer's ``state`` (arrays stay NumPy for orjson)."""
    body: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    body["definition"] = summary.definition
    body.update(_slice_json(summary.whole))
    if summary.groups is not None:
        body["groups"] = [
            {"label": label, **_slice_json(part)} for label, part in summary.groups.items()
        ]
    if summary.top_k is not None:
        body["top_k"] = [{"index": index, "value": value} for index, value in summary.top_k]
    return body


# ---- reading -------------------------------------------------------------------------------


def read_state(document: Any, index: int) -> Summary:
    """``states[index]`` of a merge request, checked (a 422 inside ``states`` otherwise)."""
    loc: list[str | int] = ["body", "states", index]
    try:
        given = StateJson.model_validate(document)
    except ValidationError as error:
        problem = structure_error(error, StateJson)
        items = [{**item, "loc": [*loc, *item["loc"][1:]]} for item in problem.errors or []]
        first, *more = items
        raise StructureError(first["loc"], f"states[{index}]: {first['msg']}", more) from None
    definition = given.definition.model_dump()
    try:
        requests = parse_metrics(definition["metrics"])
    except StructureError as error:
        raise _broken([*loc, "definition", "metrics"], error.detail) from None
    kinds = [METRICS[request.name].state_type for request in requests]
    terms = len(definition["terms"])
    whole = _slice(given.count, given.weight_sum, given.terms, given.metrics, terms, kinds, loc)
    groups = None
    if given.groups is not None:
        groups = {}
        for position, part in enumerate(given.groups):
            where = [*loc, "groups", position]
            if part.label in groups:
                raise _broken(where, f"the slice {part.label!r} is listed twice")
            groups[part.label] = _slice(
                part.count, part.weight_sum, part.terms, part.metrics, terms, kinds, where
            )
    if (given.groups is not None) != definition["groups"]:
        raise _broken(loc, "its groups do not match its definition")
    top = None
    if given.top_k is not None:
        top = [(item.index, item.value) for item in given.top_k]
    if (given.top_k is not None) != (definition["top_k"] is not None):
        raise _broken(loc, "its top_k does not match its definition")
    return Summary(definition, whole, groups, top)


def _broken(loc: list[str | int], why: str) -> StructureError:
    return StructureError(
        loc,
        f"states[{loc[2]}] is not a state /v1/evaluate wrote: {why}; send the states as they "
        "were answered",
    )


def _slice(
    count: int,
    weight_sum: float,
    terms: list[TermJson],
    metrics: list[Any],
    term_count: int,
    kinds: list[type],
    loc: list[str | int],
) -> Slice:
    if len(terms) != term_count or len(metrics) != len(kinds):
        raise _broken(loc, "its terms or metrics do not match its definition")
    states = [_metric(item, [*loc, "metrics", position]) for position, item in enumerate(metrics)]
    for position, (state, kind) in enumerate(zip(states, kinds, strict=True)):
        if not isinstance(state, kind):
            raise _broken([*loc, "metrics", position], "its kind is not its metric's")
    sums = [TermSums(term.sum, term.weight_sum, term.count) for term in terms]
    return Slice(count, weight_sum, sums, states)


def _metric(item: Any, loc: list[str | int]) -> State:
    if isinstance(item, LabelsJson):
        labels, truth, guess = (
            _integers(value, [*loc, key])
            for key, value in (
                ("labels", item.labels),
                ("truth", item.truth),
                ("guess", item.guess),
            )
        )
        weight = _weights(item.weight, [*loc, "weight"])
        if np.any(np.diff(labels) <= 0):
            raise _broken(loc, "its labels are not distinct and ascending")
        if not (truth.size == guess.size == weight.size):
            raise _broken(loc, "its pairs are not one truth, guess and weight each")
        if not (np.isin(truth, labels).all() and np.isin(guess, labels).all()):
            raise _broken(loc, "its pairs name labels it does not list")
        if not item.multiclass and labels.tolist() != [0, 1]:
            raise _broken(loc, "a binary reading has the labels [0, 1]")
        return Labels(labels, truth, guess, weight, item.count, item.multiclass)
    if isinstance(item, RanksJson):
        scores = _flat(item.scores, [*loc, "scores"])
        positive = _weights(item.positive, [*loc, "positive"])
        negative = _weights(item.negative, [*loc, "negative"])
        if positive.size != scores.size or negative.size != scores.size:
            raise _broken(loc, "its weights are not one per score")
        if np.any(np.diff(scores) <= 0):
            raise _broken(loc, "its scores are not distinct and ascending")
        return Ranks(scores, positive, negative, item.positives, item.negatives)
    low = math.inf if item.low is None else item.low
    high = -math.inf if item.high is None else item.high
    return Moments(item.count, item.weight, item.mean, item.m2, item.sse, item.sae, low, high)


def _flat(value: Any, loc: list[str | int]) -> np.ndarray:
    """A state's array: flat, finite float64."""
    if not isinstance(value, list | JsonArray):
        raise _broken(loc, "an array is not an array")
    try:
        array = to_array(value, ".".join(map(str, loc[1:])))
    except ServiceError:
        raise _broken(loc, "an array holds something other than finite numbers") from None
    if array.ndim != 1 and array.size:
        raise _broken(loc, "an array is not flat")
    return array.reshape(-1)


def _weights(value: Any, loc: list[str | int]) -> np.ndarray:
    array = _flat(value, loc)
    if np.any(array < 0):
        raise _broken(loc, "a weight is negative")
    return array


def _integers(value: Any, loc: list[str | int]) -> np.ndarray:
    array = _flat(value, loc)
    if np.any(array != np.floor(array)) or np.any(np.abs(array) > EXACT):
        raise _broken(loc, "a label is not an integer")
    return array.astype(np.int64)


def state_elements(document: Any) -> int:
    """How many numbers a state holds (what counts toward ``LOSS_SERVICE_MAX_ELEMENTS``)."""
    if isinstance(document, list):
        return sum(state_elements(item) for item in document)
    if isinstance(document, dict):
        return sum(state_elements(value) for value in document.values())
    if isinstance(document, JsonArray):
        return document.size
    if isinstance(document, BaseModel):
        return state_elements(dict(document))
    return 1


# ---- answers -------------------------------------------------------------------------------


def metric_requests(summary: Summary) -> list[MetricRequest]:
    """The metric requests of a summary's definition, validated as a request's metrics."""
    return parse_metrics(list(summary.definition.get("metrics") or []))


def slice_answer(
    part: Slice, definition: dict[str, Any], requests: list[MetricRequest]
) -> dict[str, Any]:
    """A slice's numbers as ``groups.<label>`` gives them."""
    terms = definition["terms"]
    values = values_of(part, [term["weight"] for term in terms], definition["reduction"], requests)
    body: dict[str, Any] = {"count": part.count, "weight_sum": part.weight_sum}
    body["cost"] = values.cost
    body["terms"] = {
        term["label"]: {
            "loss": term["loss"],
            "weight": term["weight"],
            "cost": cost,
            "sum": sums.sum,
            "weight_sum": sums.weight_sum,
            "count": sums.count,
        }
        for term, sums, cost in zip(terms, part.terms, values.terms, strict=True)
    }
    body["metrics"] = values.metrics
    if values.undefined:
        body["undefined"] = values.undefined
    return body


def summary_answer(summary: Summary, requests: list[MetricRequest]) -> dict[str, Any]:
    """``groups`` and ``top_k`` of an answer, as present."""
    body: dict[str, Any] = {}
    if summary.groups is not None:
        body["groups"] = {
            label: slice_answer(part, summary.definition, requests)
            for label, part in summary.groups.items()
        }
    if summary.top_k is not None:
        body["top_k"] = [{"index": index, "value": value} for index, value in summary.top_k]
    return body
