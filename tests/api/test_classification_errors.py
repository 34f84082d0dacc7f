"""Every 422 the binary and categorical losses' inputs can cause, through POST /v1/losses/{name}:
the first error's ``loc`` and the fragments its message must contain (the value, the range, the
shapes involved), the suggestion of ``from_logits``, and the mask's element grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY, LossSpec
from tests.api.examples import (
    SEGMENT,
)
from tests.api.helpers import (
    CLASSIFICATION,
    PROBABILISTIC,
    assert_names_the_problem,
    assert_problem,
    assert_result,
    element_grid,
    finite_numbers,
    post,
    post_loss,
    spec_params,
)

# --- 422s ------------------------------------------------------------------------------------

BINARY = {"predictions": [[0.9, 0.2], [0.3, 0.8]], "targets": [[1, 0], [0, 1]]}
DENSE = {"predictions": [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], "targets": [[1, 0, 0], [0, 0, 1]]}
LABELS = {"predictions": DENSE["predictions"], "targets": [0, 2]}
#: A valid request for each loss (checked below), which each 422 case changes in one place.
VALID = {
    **dict.fromkeys(["binary_cross_entropy", "binary_focal", "hinge", "squared_hinge"], BINARY),
    **dict.fromkeys(
        ["categorical_cross_entropy", "categorical_focal", "categorical_hinge", "kl_divergence"],
        DENSE,
    ),
    **dict.fromkeys(["sparse_categorical_cross_entropy", "multi_margin"], LABELS),
}
SOFT_TARGETS = [
    "binary_cross_entropy",
    "binary_focal",
    "categorical_cross_entropy",
    "categorical_focal",
    "kl_divergence",
]
HINGES = ["hinge", "squared_hinge"]
EPS_LOSSES = [name for name in CLASSIFICATION if "eps" in REGISTRY[name].params.model_fields]


def with_entry(array: list[Any], index: tuple[int, int], value: Any) -> list[Any]:
    changed = [list(row) for row in array]
    changed[index[0]][index[1]] = value
    return changed


def case(name: str, changes: dict[str, Any], loc: list[Any], fragments: list[str], id: str) -> Any:
    """A 422 case: VALID[name] with ``changes``; the first error's loc, and fragments its
    message must contain."""
    return pytest.param(name, {**VALID[name], **changes}, ["body", *loc], fragments, id=id)


def bad_param(names: list[str], key: str, values: list[Any], **params: Any) -> list[Any]:
    """A case per loss and value: loc params.<key>, the message names the key and the value."""
    return [
        case(name, {"params": {**params, key: value}}, ["params", key], [key, repr(value)],
             id=f"{name}-{key}-{value!r}")
        for name in names
        for value in values
    ]  # fmt: skip


SEGMENT_TARGETS_WRONG = {"predictions": SEGMENT["predictions"], "targets": [[0, 1, 1]]}
# fmt: off
INVALID = [
    *(case(name, {"targets": with_entry(VALID[name]["targets"], (1, 0), value)},
           ["targets", 1, 0], [f"targets[1][0] = {value}", "[0, 1]"],
           id=f"{name}-soft-target-{value}")
      for name in SOFT_TARGETS for value in (1.5, -0.5)),
    *(case(name, {"targets": with_entry(BINARY["targets"], (1, 1), value)}, ["targets", 1, 1],
           [f"targets[1][1] = {value}", "{0, 1}", "{-1, 1}"], id=f"{name}-target-{value}")
      for name in HINGES for value in (2, 0.5)),
    *(case(name, {"targets": [[1, 0], [-1, 1]]}, ["targets"],
           ["targets[0][1] = 0", "targets[1][0] = -1", "{0, 1}", "{-1, 1}"],
           id=f"{name}-mixed-conventions")
      for name in HINGES),
    *(case(name, {"targets": [0, value]}, ["targets", 1], [f"targets[1] = {value:g}", *expected],
           id=f"{name}-label-{value}")
      for name, value, expected in [
          ("sparse_categorical_cross_entropy", 1.5, ["integer"]),
          ("sparse_categorical_cross_entropy", 3, ["[0, 3)", "ignore_index -100"]),
          ("sparse_categorical_cross_entropy", -1, ["[0, 3)"]),
          ("multi_margin", 0.5, ["integer"]),
          ("multi_margin", 3, ["[0, 3)"]),
      ]),
    case("sparse_categorical_cross_entropy", {"params": {"class_weight": [1, 2]}},
         ["params", "class_weight"], ["class_weight", "2", "3"], id="class-weight-too-short"),
    case("sparse_categorical_cross_entropy", {"params": {"class_weight": [1, -2, 1]}},
         ["params", "class_weight", 1], ["class_weight", "-2"], id="class-weight-negative"),
    case("binary_cross_entropy", {"params": {"from_logits": True, "pos_weight": [1, 2, 3]}},
         ["params", "pos_weight"], ["pos_weight", "3", "(2, 2)"], id="pos-weight-wrong-length"),
    case("binary_cross_entropy", {"params": {"from_logits": True, "pos_weight": -1}},
         ["params", "pos_weight"], ["pos_weight", "-1"], id="pos-weight-negative"),
    case("binary_cross_entropy", {"params": {"from_logits": True, "pos_weight": [1, -1]}},
         ["params", "pos_weight", 1], ["pos_weight", "-1"], id="pos-weight-entry-negative"),
    case("binary_cross_entropy", {"params": {"pos_weight": 2}},
         ["params", "pos_weight"], ["pos_weight", "from_logits"], id="pos-weight-without-logits"),
    *bad_param(["binary_cross_entropy", "categorical_cross_entropy"], "label_smoothing", [-0.1, 1]),
    *bad_param(["sparse_categorical_cross_entropy"], "label_smoothing", [1.5]),
    *bad_param(["binary_focal", "categorical_focal"], "gamma", [-0.5]),
    *bad_param(["binary_focal", "categorical_focal"], "alpha", [-0.1, 1.5, "0.5", True]),
    *bad_param(["multi_margin"], "p", [0, 3, 1.5, "2", True]),
    *bad_param(EPS_LOSSES, "eps", [0, 0.5]),
    *bad_param(["sparse_categorical_cross_entropy"], "ignore_index", [1.5, "1", True]),
    # Shapes: both shapes named, and the shape that was expected.
    case("sparse_categorical_cross_entropy", {"targets": DENSE["targets"]}, ["targets"],
         ["(2, 3)", "integer", "must be (2,)"], id="sparse-given-one-hot-targets"),
    case("sparse_categorical_cross_entropy", SEGMENT_TARGETS_WRONG, ["targets"],
         ["(1, 3)", "(1, 3, 2)", "must be (1, 2)"], id="sparse-segmentation-targets"),
    case("categorical_cross_entropy", {"targets": LABELS["targets"]}, ["targets"],
         ["(2,)", "(2, 3)"], id="cce-given-integer-targets"),
    case("categorical_cross_entropy", {"predictions": [0.7, 0.2, 0.1], "targets": [1, 0, 0]},
         ["predictions"], ["(3,)", "(N, C, d1, ...)"], id="cce-without-class-axis"),
    case("binary_cross_entropy", {"targets": [[1, 0, 1], [0, 1, 0]]}, ["targets"],
         ["(2, 3)", "(2, 2)"], id="bce-shape-mismatch"),
    case("multi_margin", {"predictions": [[[0.1, 0.2, 0.4, 0.8]]], "targets": [[3]]},
         ["predictions"], ["(1, 1, 4)", "(N, C)"], id="multi-margin-3d"),
    case("multi_margin", {"predictions": [0.1, 0.2, 0.4, 0.8], "targets": [3]},
         ["predictions"], ["(4,)", "(N, C)"], id="multi-margin-1d"),
]
# fmt: on


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_the_bodies_the_422_cases_start_from_are_valid(client: TestClient, name: str) -> None:
    finite_numbers(post_loss(client, name, VALID[name]))


@pytest.mark.parametrize(("name", "body", "loc", "fragments"), INVALID)
def test_invalid_classification_request_is_422_naming_the_problem(
    client: TestClient, name: str, body: dict[str, Any], loc: list[Any], fragments: list[str]
) -> None:
    problem = assert_names_the_problem(post(client, name, body), loc, fragments)
    assert "constrained-float" not in str(problem), "a validator's internal name leaked"


@pytest.mark.parametrize("value", [1.5, -0.25])
@pytest.mark.parametrize("spec", spec_params(PROBABILISTIC))
def test_probabilities_outside_0_1_are_422_suggesting_from_logits(
    client: TestClient, spec: LossSpec, value: float
) -> None:
    body = VALID[spec.name]
    bad = {**body, "predictions": with_entry(body["predictions"], (1, 1), value)}
    first = assert_problem(post(client, spec.name, bad), 422)["errors"][0]
    assert first["loc"] == ["body", "predictions", 1, 1]
    for fragment in (f"predictions[1][1] = {value}", "[0, 1]", '"from_logits": true'):
        assert fragment in first["msg"]
    # The same values are fine as logits.
    finite_numbers(post_loss(client, spec.name, {**bad, "params": {"from_logits": True}}))


@pytest.mark.parametrize("spec", spec_params(CLASSIFICATION))
def test_mask_takes_the_element_grid(client: TestClient, spec: LossSpec) -> None:
    """A mask of zeros on the element grid gives weight_sum 0 and cost 0; a mask of the
    predictions' shape (where that differs) is a 422 naming both shapes."""
    body = VALID[spec.name]
    grid = element_grid(spec, body["predictions"])
    result = post_loss(client, spec.name, {**body, "mask": np.zeros(grid).tolist()})
    assert_result(result, {"weight_sum": 0.0, "cost": 0.0, "sum": 0.0})
    shape = np.shape(body["predictions"])
    if shape != grid:
        response = post(client, spec.name, {**body, "mask": np.ones(shape).tolist()})
        first = assert_problem(response, 422)["errors"][0]
        assert first["loc"] == ["body", "mask"]
        assert str(shape) in first["msg"]
        assert str(grid) in first["msg"]
