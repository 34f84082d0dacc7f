"""The binary and categorical losses at the extremes of float64, through POST /v1/losses/{name}:
logits or scores of +-1e4 and probabilities of exactly 0 and 1 give exact or finite results,
and an eps below float64's resolution never gets a 5xx.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY, LossSpec
from tests.api.helpers import (
    CLASSIFICATION,
    PROBABILISTIC,
    assert_problem,
    assert_result,
    defaults_body,
    finite_numbers,
    post,
    post_loss,
)

LN2 = math.log(2.0)


# --- numerical extremes ----------------------------------------------------------------------

WRONG = {"predictions": [[1e4, -1e4]], "targets": [[0, 1]]}
RIGHT = {"predictions": [[1e4, -1e4]], "targets": [[1, 0]]}
THREE = {"predictions": [[1e4, -1e4, 0]], "targets": [[0, 1, 0]]}
# fmt: off
EXTREME_LOGITS = [
    # log sigmoid(-1e4) = -1e4 exactly in float64; sigmoid(1e4) = 1: gradient (sigmoid - y) / 2.
    pytest.param("binary_cross_entropy", WRONG, {}, 1e4, [[0.5, -0.5]], id="bce-wrong"),
    pytest.param("binary_cross_entropy", RIGHT, {}, 0, [[0, 0]], id="bce-right"),
    # (1 - p_t)^gamma = 1 on the wrong side and its derivative underflows to 0: as bce.
    pytest.param("binary_focal", WRONG, {}, 1e4, [[0.5, -0.5]], id="focal-wrong"),
    pytest.param("binary_focal", WRONG, {"gamma": 0.5}, 1e4, [[0.5, -0.5]], id="focal-gamma-half"),
    pytest.param("binary_focal", RIGHT, {"gamma": 0.5}, 0, [[0, 0]], id="focal-right"),
    # log-softmax: log q = [0, -2e4, -1e4]; q - y = [1, -1, 0].
    pytest.param("categorical_cross_entropy", THREE, {}, 2e4, [[1, -1, 0]], id="cce"),
    pytest.param("categorical_focal", THREE, {"gamma": 0.5}, 2e4, [[1, -1, 0]], id="cat-focal"),
    # y' = [1, 28, 1] / 30: 28/30 * 2e4 + 1/30 * 1e4 = 19000; q - y'.
    pytest.param("sparse_categorical_cross_entropy", {**THREE, "targets": [1]},
                 {"label_smoothing": 0.1}, 19000, [[29 / 30, -28 / 30, -1 / 30]], id="sparse"),
    # 0.5 (ln 0.5 - 0) + 0.5 (ln 0.5 + 2e4) = 1e4 - ln 2; q - y.
    pytest.param("kl_divergence", {**THREE, "targets": [[0.5, 0.5, 0]]}, {}, 1e4 - LN2,
                 [[0.5, -0.5, 0]], id="kl"),
]
# fmt: on


@pytest.mark.parametrize(("name", "body", "params", "cost", "gradient"), EXTREME_LOGITS)
def test_extreme_logits_give_exact_finite_values(
    client: TestClient,
    name: str,
    body: dict[str, Any],
    params: dict[str, Any],
    cost: float,
    gradient: list[list[float]],
) -> None:
    result = post_loss(client, name, {**body, "params": {"from_logits": True, **params}})
    assert_result(result, {"cost": cost, "gradient": gradient})


def variants(names: list[str]) -> list[Any]:
    """Each loss, and again with gamma 0.5 and 0 where it has a gamma (powers of 1 - p_t whose
    derivatives blow up at 0)."""
    return [
        pytest.param(REGISTRY[name], extra, id="-".join([name, *map(str, extra.items())]))
        for name in names
        for extra in (
            [{}, {"gamma": 0.5}, {"gamma": 0}]
            if "gamma" in REGISTRY[name].params.model_fields
            else [{}]
        )
    ]


@pytest.mark.parametrize(("spec", "extra"), variants(CLASSIFICATION))
def test_logits_or_scores_of_plus_minus_1e4_give_finite_results(
    client: TestClient, spec: LossSpec, extra: dict[str, Any]
) -> None:
    body = dict(spec.example)
    shape = np.shape(body["predictions"])
    signs = np.where(np.indices(shape).sum(axis=0) % 2 == 0, 1.0, -1.0)
    params = {**body.get("params", {}), **extra}
    if spec.name in PROBABILISTIC:
        params["from_logits"] = True
    for scores in (1e4 * signs, -1e4 * signs):
        extreme = {**body, "predictions": scores.tolist(), "params": params}
        finite_numbers(post_loss(client, spec.name, extreme))


@pytest.mark.parametrize(("spec", "extra"), variants(PROBABILISTIC))
def test_probabilities_exactly_0_and_1_give_finite_results(
    client: TestClient, spec: LossSpec, extra: dict[str, Any]
) -> None:
    """Both sides: the example's probabilities rounded to 0 or 1 (mostly right) and flipped
    (confidently wrong); clipping to [eps, 1 - eps] keeps every log finite."""
    body = defaults_body(spec)
    rounded = np.round(np.asarray(body["predictions"], dtype=float))
    for predictions in (rounded, 1 - rounded):
        saturated = {**body, "predictions": predictions.tolist(), "params": extra}
        finite_numbers(post_loss(client, spec.name, saturated))


@pytest.mark.parametrize("eps", [1e-17, 5e-324])
@pytest.mark.parametrize(("spec", "extra"), variants(PROBABILISTIC))
def test_probabilities_0_and_1_with_an_eps_below_float64_resolution_never_get_a_5xx(
    client: TestClient, spec: LossSpec, extra: dict[str, Any], eps: float
) -> None:
    """eps is accepted in (0, 0.5), but below ~1.1e-16 1 - eps rounds to 1, so a clipped
    probability can still be exactly 1. A 200 with finite numbers or a 422, never a 500
    (API.md: "No input makes the service answer 500")."""
    body = defaults_body(spec)
    rounded = np.round(np.asarray(body["predictions"], dtype=float))
    for predictions in (rounded, 1 - rounded):
        params = {**extra, "eps": eps}
        response = post(
            client, spec.name, {**body, "predictions": predictions.tolist(), "params": params}
        )
        if response.status_code == 200:
            finite_numbers(response.json())
        else:
            assert_problem(response, 422)
