"""Stage 1, the structure: Pydantic's verdict on a request (types, required fields, params
with ``extra="forbid"``) as this service's errors, whose messages say what was got."""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from service.validation.errors import MAX_LISTED_ERRORS, StructureError


class Params(BaseModel):
    """Base of every params model (losses, metrics): unknown keys are an error, never ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


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
            specific.setdefault(loc, []).append(dict(item))
            continue
        field_loc = loc[:tag_at]
        cleaned: dict[str, Any] = {**item, "loc": field_loc + loc[tag_at + 1 :]}
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
    return StructureError(first["loc"], str(first["msg"]), more, unlisted)


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
