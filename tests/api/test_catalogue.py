"""GET /v1/losses (the catalogue) and GET /v1/losses/{name}, checked against API.md and LOSSES.md
(as typed in tests/api/documented.py, itself checked against the README's loss tables).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY, LossSpec
from tests.api.documented import (
    DOCUMENTED_ALIASES,
    DOCUMENTED_BOUNDS,
    DOCUMENTED_DEFAULTS,
    DOCUMENTED_DEVIATIONS,
    DOCUMENTED_FAMILIES,
    DOCUMENTED_FORMULAS,
    DOCUMENTED_REQUIRED,
    DOCUMENTED_SHAPES,
    OVERLAP,
)
from tests.support.paths import ROOT

SPECS = [pytest.param(spec, id=name) for name, spec in REGISTRY.items()]
ALIASES = [
    pytest.param(alias, spec, id=alias) for spec in REGISTRY.values() for alias in spec.aliases
]
ENTRY_KEYS = {"name", "aliases", "family", "summary", "formula", "shapes", "params"}


def schema_defaults(params_schema: dict[str, Any]) -> dict[str, Any]:
    return {key: prop.get("default") for key, prop in params_schema["properties"].items()}


def constraint(prop: dict[str, Any], key: str) -> Any:
    """A bound of a param's schema, looked up through anyOf (nullable or number-or-list params)
    and array items; None when no branch states it."""
    for node in (prop, *prop.get("anyOf", ())):
        node = node.get("items", node)
        if key in node:
            return node[key]
    return None


# --- GET /v1/losses --------------------------------------------------------------------------


def test_catalogue_lists_exactly_the_registry(catalogue: dict[str, dict[str, Any]]) -> None:
    assert sorted(catalogue) == sorted(REGISTRY)


#: The README's "## Losses" sections (its copy of API.md's table "Losses"), by family.
README_SECTIONS = {
    "Regression": "regression",
    "Binary and multi-label": "binary",
    "Categorical": "categorical",
    "Overlap": "overlap",
    "Boxes": "boxes",
    "Sequences": "sequence",
    "Custom": "custom",
}


def readme_families() -> dict[str, str]:
    """Loss name -> family, read off the README's loss tables: in each "### <family>:" section
    of "## Losses", the first column of its first table (the custom loss, which has no table,
    is named in its heading)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    losses = text.split("\n## Losses\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str] = {}
    for section in losses.split("\n### ")[1:]:
        heading, _, body = section.partition("\n")
        family = README_SECTIONS[heading.split(":", 1)[0]]
        table = re.search(r"(?m)^\|[^\n]*\n\|[-| ]+\|\n((?:\|[^\n]*\n)+)", body)
        names = re.findall(r"(?m)^\| `(\w+)` \|", table.group(1)) if table else []
        names = names or re.findall(r"`(\w+)`", heading)[:1]
        for name in names:
            assert name not in found, f"{name} is listed twice in the README"
            found[name] = family
    return found


def test_the_documented_tables_agree() -> None:
    """The families typed in tests/api/documented.py are the README's (its loss tables copy
    API.md's table "Losses": 26 canonical names), and LOSSES.md gives each its params."""
    assert readme_families() == DOCUMENTED_FAMILIES
    assert len(DOCUMENTED_FAMILIES) == 26
    assert set(DOCUMENTED_FAMILIES) == set(DOCUMENTED_DEFAULTS)
    assert set(DOCUMENTED_REQUIRED) <= set(DOCUMENTED_FAMILIES)


@pytest.mark.parametrize("name", list(DOCUMENTED_FAMILIES))
def test_every_documented_loss_is_listed_with_its_family(
    catalogue: dict[str, dict[str, Any]], name: str
) -> None:
    assert name in catalogue, f"API.md lists {name!r}; GET /v1/losses does not"
    assert catalogue[name]["family"] == DOCUMENTED_FAMILIES[name]


@pytest.mark.parametrize(("name", "alias"), DOCUMENTED_ALIASES)
def test_documented_aliases_are_listed(
    catalogue: dict[str, dict[str, Any]], name: str, alias: str
) -> None:
    assert alias in catalogue[name]["aliases"]


@pytest.mark.parametrize(("name", "patterns"), DOCUMENTED_DEVIATIONS)
def test_notes_state_where_a_convention_differs(
    catalogue: dict[str, dict[str, Any]], name: str, patterns: list[str]
) -> None:
    notes = catalogue[name]["notes"]
    for pattern in patterns:
        assert re.search(pattern, notes, re.IGNORECASE), f"{pattern!r} not in {notes!r}"


@pytest.mark.parametrize(("name", "field", "layout"), DOCUMENTED_SHAPES)
def test_shapes_state_the_documented_layout(
    catalogue: dict[str, dict[str, Any]], name: str, field: str, layout: str
) -> None:
    assert catalogue[name]["shapes"][field].startswith(layout)


@pytest.mark.parametrize("spec", SPECS)
def test_catalogue_entry_describes_the_loss(
    catalogue: dict[str, dict[str, Any]], spec: LossSpec
) -> None:
    entry = catalogue[spec.name]
    assert set(entry) >= ENTRY_KEYS
    assert entry["aliases"] == list(spec.aliases)
    assert entry["family"] == spec.family
    assert entry["summary"] == spec.summary
    assert entry["summary"].strip()
    assert set(entry["formula"]) == {"loss", "gradient"}
    assert entry["formula"]["loss"].strip()
    assert entry["formula"]["gradient"].strip()
    assert {"predictions", "targets"} <= set(entry["shapes"])
    params = entry["params"]
    assert params["type"] == "object"
    assert params["additionalProperties"] is False  # an unknown key is a 422, never ignored
    assert set(params["properties"]) == set(spec.params.model_fields)
    required = set(params.get("required", []))
    assert sorted(required) == DOCUMENTED_REQUIRED.get(spec.name, [])
    for key, prop in params["properties"].items():
        if key not in required:
            assert "default" in prop, f"{spec.name}.{key} has no default in its schema"


@pytest.mark.parametrize(
    ("name", "defaults"),
    [pytest.param(name, defaults, id=name) for name, defaults in DOCUMENTED_DEFAULTS.items()],
)
def test_params_defaults_match_losses_md(
    catalogue: dict[str, dict[str, Any]], name: str, defaults: dict[str, Any]
) -> None:
    params = catalogue[name]["params"]
    optional = {
        key: value
        for key, value in schema_defaults(params).items()
        if key not in params.get("required", [])
    }
    assert optional == defaults
    assert sorted(params.get("required", [])) == DOCUMENTED_REQUIRED.get(name, [])


@pytest.mark.parametrize(
    ("name", "patterns"),
    [pytest.param(name, patterns, id=name) for name, patterns in DOCUMENTED_FORMULAS],
)
def test_formula_states_losses_md(
    catalogue: dict[str, dict[str, Any]], name: str, patterns: list[str]
) -> None:
    formula = catalogue[name]["formula"]["loss"]
    for pattern in patterns:
        assert re.search(pattern, formula), f"{pattern!r} not in {formula!r}"


@pytest.mark.parametrize("name", [*OVERLAP, "box_iou"])
def test_eps_of_a_loss_without_a_log_is_not_described_as_log_clipping(
    catalogue: dict[str, dict[str, Any]], name: str
) -> None:
    """LOSSES.md: overlap and box losses use eps in a denominator (max(D, eps), U + eps); they
    take no log, so a description saying eps clips probabilities before a log misleads."""
    description = catalogue[name]["params"]["properties"]["eps"].get("description", "")
    assert "log" not in description, description


@pytest.mark.parametrize(("name", "key", "bounds"), DOCUMENTED_BOUNDS)
def test_params_ranges_match_losses_md(
    catalogue: dict[str, dict[str, Any]], name: str, key: str, bounds: dict[str, float]
) -> None:
    prop = catalogue[name]["params"]["properties"][key]
    assert {bound: constraint(prop, bound) for bound in bounds} == bounds


@pytest.mark.parametrize("spec", SPECS)
def test_get_one_loss_by_name(
    client: TestClient, catalogue: dict[str, dict[str, Any]], spec: LossSpec
) -> None:
    response = client.get(f"/v1/losses/{spec.name}")
    assert response.status_code == 200
    assert response.json() == catalogue[spec.name]


@pytest.mark.parametrize(("alias", "spec"), ALIASES)
def test_get_one_loss_by_alias_gives_the_canonical_entry(
    client: TestClient, catalogue: dict[str, dict[str, Any]], alias: str, spec: LossSpec
) -> None:
    response = client.get(f"/v1/losses/{alias}")
    assert response.status_code == 200
    assert response.json() == catalogue[spec.name]


@pytest.mark.parametrize(
    ("name", "close_match"),
    [
        ("msse", "mse"),
        ("hubber", "huber"),
        ("smooth_l2", "smooth_l1"),
        ("quantil", "quantile"),
        ("dise", "dice"),
        ("tverski", "tversky"),
        ("box_io", "box_iou"),
        ("sequence_crossentropy", "sequence_cross_entropy"),
    ],
)
def test_unknown_loss_is_404_with_close_matches(
    client: TestClient, name: str, close_match: str
) -> None:
    response = client.get(f"/v1/losses/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 404
    assert {"type", "title", "detail"} <= set(problem)
    assert name in problem["detail"]
    assert f"'{close_match}'" in problem["detail"]
