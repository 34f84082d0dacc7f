"""Stage 1 for ``POST /v1/losses/{name}``: the request's structure, and the response's shape.

The per-loss request model validates everything but the arrays with Pydantic (types,
``reduction``, ``include``, the loss's ``params`` with ``extra="forbid"``). Arrays are typed
``Any`` for Pydantic, so it never walks them float by float, and are converted by
:func:`service.api.codec.to_array` in one NumPy call each. The same models document each
operation in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, create_model

from service.api.codec import nested_size, to_array
from service.compute.engine import LossResult
from service.losses.registry import LossSpec
from service.validation.contracts import Inputs
from service.validation.errors import MAX_LISTED_ERRORS, PayloadTooLarge, StructureError

#: JSON Schema of a nested array of numbers (inline, so Pydantic can merge field metadata).
NUMBER_ARRAY_SCHEMA = {
    "type": "array",
    "items": {"anyOf": [{"type": "number"}, {"type": "array"}]},
    "description": "A JSON nested list of numbers: rectangular, finite.",
}
NumberArray = Annotated[Any, WithJsonSchema(NUMBER_ARRAY_SCHEMA)]
Output = Literal["cost", "per_sample", "gradient"]
ALL_OUTPUTS: tuple[Output, ...] = ("cost", "per_sample", "gradient")
#: Longest ``include`` list (its names may repeat); a longer list is refused before its entries
#: are checked one by one.
MAX_INCLUDE = 16


class LossRequest(BaseModel):
    """Fields shared by every loss; each loss's model adds its own ``params``."""

    model_config = ConfigDict(extra="forbid")

    predictions: NumberArray = Field(description="Predictions (or logits), shape (N, ...).")
    targets: NumberArray = Field(description="Targets; the shape the loss's contract requires.")
    sample_weight: NumberArray | None = Field(
        None, description="Per-sample weights, shape (N,), >= 0. Default all 1."
    )
    mask: NumberArray | None = Field(
        None, description="Element mask, the shape of the loss's element grid, values in [0, 1]."
    )
    reduction: Literal["mean", "sum"] = Field(
        "mean", description="'mean': weighted mean over elements; 'sum': weighted sum."
    )
    include: list[Output] = Field(
        default_factory=lambda: list(ALL_OUTPUTS),  # a factory: no deepcopy per request
        max_length=MAX_INCLUDE,
        description="Which of cost, per_sample, gradient to return.",
    )


class LossResponse(BaseModel):
    """The response of ``POST /v1/losses/{name}``; ``include`` may leave out the first three."""

    loss: str = Field(description="Canonical name of the loss.")
    reduction: Literal["mean", "sum"]
    cost: float | None = Field(None, description="Weighted mean (or sum) of element losses.")
    per_sample: list[float] | None = Field(None, description="Weighted mean loss of each sample.")
    gradient: NumberArray | None = Field(
        None, description="d cost / d predictions, same shape as predictions."
    )
    sum: float = Field(description="Sum of weight x element loss (for merging shards).")
    weight_sum: float = Field(description="Sum of element weights (for merging shards).")
    count: int = Field(description="Number of samples N.")
    extras: dict[str, Any] = Field(default_factory=dict, description="Loss-specific outputs.")


@cache
def request_model(spec: LossSpec) -> type[LossRequest]:
    """``<Name>Request``: the shared fields plus this loss's params model."""
    title = "".join(part.capitalize() for part in spec.name.split("_"))
    return create_model(
        f"{title}Request",
        __base__=LossRequest,
        __doc__=f"Request body of POST /v1/losses/{spec.name}.",
        params=(spec.params | None, Field(None, description=f"Parameters of {spec.name}.")),
    )


@dataclass(frozen=True)
class ParsedRequest:
    inputs: Inputs
    params: Any
    reduction: Literal["mean", "sum"]
    include: frozenset[str]


def parse(
    spec: LossSpec, document: dict[str, Any], max_elements: int, *, check_booleans: bool = True
) -> ParsedRequest:
    """Validate a request document (:func:`service.api.codec.read_request` refused its unknown keys
    already) into arrays, params, reduction and outputs."""
    model = request_model(spec)
    if document.get("params") is None:
        # Validate the defaults too: a loss may require a parameter (ctc's target_lengths).
        document = {**document, "params": {}}
    try:
        request = model.model_validate(document)
    except ValidationError as error:
        raise structure_error(error, model) from None
    budget = ElementBudget(max_elements)
    return ParsedRequest(
        inputs=read_inputs(request, budget, check_booleans),
        params=request.params,  # type: ignore[attr-defined]
        reduction=request.reduction,
        include=frozenset(request.include),
    )


class ElementBudget:
    """Counts array elements across a request; 413 past LOSS_SERVICE_MAX_ELEMENTS, decided
    from the decoded JSON lists' lengths before NumPy allocates the array."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0

    def take(self, value: Any, convert: Callable[[Any], np.ndarray]) -> np.ndarray:
        """``convert(value)``, once the elements ``value`` holds fit in what is left."""
        self._check(self.seen + nested_size(value))
        array = convert(value)
        self.seen += array.size
        self._check(self.seen)
        return array

    def _check(self, total: int) -> None:
        if total > self.limit:
            raise PayloadTooLarge(
                f"the request holds more than {self.limit} array elements "
                "(LOSS_SERVICE_MAX_ELEMENTS)"
            )


def read_inputs(request: BaseModel, budget: ElementBudget, check_booleans: bool = True) -> Inputs:
    """The payload's arrays (predictions, targets, optional sample_weight and mask) as float64."""
    arrays: dict[str, np.ndarray | None] = {}
    for field in ("predictions", "targets", "sample_weight", "mask"):
        value = getattr(request, field)
        if value is None and field in ("sample_weight", "mask"):
            arrays[field] = None
            continue
        convert = partial(to_array, field=field, check_booleans=check_booleans)
        arrays[field] = budget.take(value, convert)
    return Inputs(**arrays)  # type: ignore[arg-type]


def structure_error(error: ValidationError, model: type[BaseModel]) -> StructureError:
    """Pydantic's errors as ours: ``loc`` under ``body``, messages that say what was got.

    A field typed as a union (``pos_weight``: a number or a list) gets one error per branch,
    each tagged in ``loc`` with the branch's internal name. Those tags are dropped; a branch
    that refused the value's *type* is left out when another branch says what is wrong with
    the value itself; when every branch refused the type, one message lists what is accepted.
    """
    specific: dict[tuple, list[dict[str, Any]]] = {}
    type_mismatches: dict[tuple, list[dict[str, Any]]] = {}
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        tag_at = _union_tag_position(model, loc)
        if tag_at is None:
            specific.setdefault(loc, []).append(item)
            continue
        field_loc = loc[:tag_at]
        cleaned = {**item, "loc": field_loc + loc[tag_at + 1 :]}
        if len(loc) == tag_at + 1 and item["type"] in TYPE_ERRORS:
            type_mismatches.setdefault(field_loc, []).append(cleaned)
        else:
            specific.setdefault(field_loc, []).append(cleaned)
    items = []
    for group in specific.values():
        items += [{"loc": ["body", *item["loc"]], "msg": _message(item, model)} for item in group]
    for loc, group in type_mismatches.items():
        if loc in specific:
            continue  # another branch took the type and says what is wrong with the value
        where = _path(loc)
        accepted = " or ".join(item["msg"].removeprefix("Input should be ") for item in group)
        items.append(
            {
                "loc": ["body", *loc],
                "msg": f"{where}: expected {accepted}, got {_shown(group[0].get('input'))}",
            }
        )
    unlisted = max(0, len(items) - MAX_LISTED_ERRORS)
    first, *more = items[:MAX_LISTED_ERRORS]
    return StructureError(first["loc"], first["msg"], more, unlisted)


TYPE_ERRORS = frozenset(
    {"list_type", "float_type", "int_type", "bool_type", "string_type", "dict_type", "model_type"}
)


def _union_tag_position(model: type[BaseModel], loc: tuple[Any, ...]) -> int | None:
    """Where Pydantic put a union branch's tag in ``loc``, if the path crosses a union field."""
    current: Any = model
    for position, part in enumerate(loc):
        field = getattr(current, "model_fields", {}).get(part) if isinstance(part, str) else None
        if field is None:
            return None
        annotation = field.annotation
        is_union = get_origin(annotation) in (Union, UnionType)
        members = [arg for arg in get_args(annotation) if arg is not type(None)] if is_union else []
        models = [arg for arg in members if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if models:
            current = models[0]
            continue
        if len(members) > 1 and position + 1 < len(loc) and isinstance(loc[position + 1], str):
            return position + 1
        return None
    return None


def _path(loc: tuple[Any, ...]) -> str:
    """``params.pos_weight[1]``: a field path as messages write it."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _shown(value: Any) -> str:
    shown = repr(value) if not isinstance(value, list | dict) else type(value).__name__
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _message(item: dict[str, Any], model: type[BaseModel]) -> str:
    where = _path(tuple(item["loc"]))
    if item["type"] == "extra_forbidden":
        owner = _model_at(model, item["loc"][:-1])
        allowed = ", ".join(owner.model_fields) if owner is not None else ""
        what = "parameter" if item["loc"][:1] == ("params",) else "field"
        return f"unknown {what} {item['loc'][-1]!r}; allowed: {allowed or 'none'}"
    if item["type"] == "missing":
        return f"{where} is required"
    return f"{where}: {item['msg']}, got {_shown(item.get('input'))}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if current is None:
            return None
    return current


def render(result: LossResult, include: frozenset[str]) -> dict[str, Any]:
    """The response body; arrays stay NumPy for orjson."""
    body: dict[str, Any] = {"loss": result.loss, "reduction": result.reduction}
    if "cost" in include:
        body["cost"] = result.cost
    if "per_sample" in include:
        body["per_sample"] = result.per_sample
    if "gradient" in include and result.gradient is not None:
        body["gradient"] = result.gradient
    body["sum"] = result.sum
    body["weight_sum"] = result.weight_sum
    body["count"] = result.count
    body["extras"] = result.extras
    return body
