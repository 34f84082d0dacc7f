"""``POST /v1/evaluate/merge``: the answer ``POST /v1/evaluate`` gives for the data of several
batches together, from the ``state`` each answered (``"state": true``).

``{"states": [state, ...], "regularization": {...}}`` (at least one state; regularization
optional, added once, as in ``/v1/evaluate``). The answer has ``reduction``, ``cost`` (the
terms' weighted costs plus the regularization), ``count``, ``terms`` (each with ``loss``,
``weight``, ``cost``, ``sum``, ``weight_sum``, ``count``), ``regularization`` when sent,
``metrics`` (``null`` with the reason under ``undefined`` where there is no value),
``groups`` and ``top_k`` when the states have them, and the merged ``state``, so merges can run
as a tree. States of different definitions are a 422 naming the first difference; the numbers
the states hold count toward ``LOSS_SERVICE_MAX_ELEMENTS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.api import codec
from service.api.problems import Reply, problem_reply
from service.api.routes import Request
from service.api.scoring import score
from service.api.v1.evaluate import ARRAYS, Regularization, parameters_of
from service.api.v1.fields import ElementBudget
from service.api.v1.summary import (
    STATE_ARRAYS,
    metric_requests,
    read_state,
    slice_answer,
    state_elements,
    state_json,
    summary_answer,
)
from service.compute.pipeline import Call
from service.compute.regularization import Penalty
from service.compute.summary import Merge, Summary
from service.validation.errors import NonFiniteResult, PayloadTooLarge, ServiceError
from service.validation.structure import structure_error

MAX_STATES = 4096


class MergeRequest(BaseModel):
    """Request body of POST /v1/evaluate/merge."""

    model_config = ConfigDict(extra="forbid")

    states: list[Any] = Field(
        min_length=1,
        max_length=MAX_STATES,
        description="The ``state`` objects of /v1/evaluate answers (or of merges), as answered.",
    )
    regularization: Regularization | None = None


async def handle(request: Request) -> Reply:
    try:
        codec.check_json_content_type(request.header(b"content-type"))
    except ServiceError as error:
        return problem_reply(error)
    return await score(request, decode)


def decode(body: bytes | bytearray, max_elements: int, _reserve: Callable[[int], None]) -> Call:
    document = codec.read_request(body, MergeRequest, {**ARRAYS, "states": STATE_ARRAYS})
    try:
        request = MergeRequest.model_validate(document)
    except ValidationError as error:
        raise structure_error(error, MergeRequest) from None
    del document
    elements = state_elements(request.states)
    if elements > max_elements:
        raise PayloadTooLarge(
            f"the states hold {elements} numbers; the limit is {max_elements} "
            "(LOSS_SERVICE_MAX_ELEMENTS): merge fewer states at once (in a tree)"
        )
    budget = ElementBudget(max_elements - elements)
    summaries = [read_state(state, index) for index, state in enumerate(request.states)]
    given = request.regularization
    merge = Merge(
        summaries,
        elements,
        None if given is None else Penalty(given.l1, given.l2),
        parameters_of(given, budget),
    )
    return Call(merge, partial(answer, given is not None))


def answer(with_regularization: bool, merged: tuple[Summary, dict[str, Any]]) -> Reply:
    summary, regularization = merged
    requests = metric_requests(summary)
    whole = slice_answer(summary.whole, summary.definition, requests)
    body: dict[str, Any] = {"reduction": summary.reduction}
    body["cost"] = whole["cost"] + regularization["value"]
    body["count"] = summary.whole.count
    body["terms"] = whole["terms"]
    if with_regularization:
        body["regularization"] = regularization
    body["metrics"] = whole["metrics"]
    if "undefined" in whole:
        body["undefined"] = whole["undefined"]
    body.update(summary_answer(summary, requests))
    body["state"] = state_json(summary)
    where = _first_non_finite(body)
    if where is not None:
        raise NonFiniteResult(
            ["body", "states"],
            f"the merged {where} overflows float64; the states' sums are too large to add",
        )
    return Reply(200, codec.encode(body))


def _first_non_finite(value: Any, path: str = "answer") -> str | None:
    """Where the answer holds its first number that is not finite (a sum that overflowed)."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _first_non_finite(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _first_non_finite(item, f"{path}[{index}]")
            if found:
                return found
    elif isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return path
    elif isinstance(value, float) and not math.isfinite(value):
        return path
    return None
