"""The catalogue entry of a loss, derived from its :class:`~service.losses.registry.LossSpec`."""

from __future__ import annotations

from typing import Any

from service.losses.registry import LossSpec


def entry(spec: LossSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "family": spec.family,
        "summary": spec.summary,
        "formula": {"loss": spec.formula.loss, "gradient": spec.formula.gradient},
        "elements": spec.contract.elements,
        "shapes": dict(spec.contract.shapes),
        "params": spec.params.model_json_schema(),
        "references": list(spec.references),
        "notes": spec.notes,
        "example": dict(spec.example),
        "endpoint": f"/v1/losses/{spec.name}",
    }


def describe(spec: LossSpec) -> str:
    """Markdown for the OpenAPI operation of the loss."""
    lines = [
        spec.summary,
        "",
        f"- loss: `{spec.formula.loss}`",
        f"- gradient: `{spec.formula.gradient}`",
        f"- elements: {spec.contract.elements}",
        *(f"- {field}: {shape}" for field, shape in spec.contract.shapes.items()),
    ]
    if spec.aliases:
        lines.append(f"- aliases (also accepted in the path): {', '.join(spec.aliases)}")
    if spec.notes:
        lines += ["", spec.notes]
    if spec.references:
        lines += ["", "References: " + "; ".join(spec.references)]
    return "\n".join(lines)
