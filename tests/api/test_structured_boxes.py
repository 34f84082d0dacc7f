"""box_iou through POST /v1/losses/{name}: box formats as reparametrisations (the xyxy loss and the
chained gradient), zero-area boxes, a perfect box, and ciou's gradient differentiating alpha.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from tests.api.helpers import (
    assert_finite,
    post_loss,
)

EPS = 1e-7  # LOSSES.md's default eps


# --- boxes -----------------------------------------------------------------------------------

VARIANTS = ["iou", "giou", "diou", "ciou"]
# No coordinate of a predicted box ties with the target's (a tie is a kink of min / max).
BOXES = {
    "predictions": [[[0.25, 0, 2, 1]], [[1, 1, 4, 3.5]]],
    "targets": [[[0.5, 0.5, 1.5, 2]], [[0, 0, 2, 2]]],
}


def in_format(boxes: Any, box_format: str) -> list[Any]:
    """xyxy boxes in ``box_format`` (exact in binary for these numbers)."""
    b = np.asarray(boxes, dtype=float)
    x1, y1, x2, y2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if box_format == "xyxy":
        return b.tolist()
    if box_format == "xywh":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1).tolist()
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1).tolist()


def chained_to(gradient: Any, box_format: str) -> np.ndarray:
    """d/d(format) from d/d(x1, y1, x2, y2): xywh x2 = x + w; cxcywh x1,2 = cx -+ w/2."""
    g = np.asarray(gradient, dtype=float)
    g1, g2 = g[..., :2], g[..., 2:]
    if box_format == "xywh":
        return np.concatenate([g1 + g2, g2], axis=-1)
    return np.concatenate([g1 + g2, (g2 - g1) / 2], axis=-1)


@pytest.mark.parametrize("box_format", ["xywh", "cxcywh"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_box_formats_give_the_xyxy_loss_and_the_chained_gradient(
    client: TestClient, variant: str, box_format: str
) -> None:
    xyxy = post_loss(client, "box_iou", {**BOXES, "params": {"variant": variant}})
    converted = {key: in_format(value, box_format) for key, value in BOXES.items()}
    params = {"variant": variant, "box_format": box_format}
    result = post_loss(client, "box_iou", {**converted, "params": params})
    assert result["per_sample"] == pytest.approx(xyxy["per_sample"], rel=1e-12)
    expected = chained_to(xyxy["gradient"], box_format)
    np.testing.assert_allclose(result["gradient"], expected, rtol=1e-12, atol=1e-15)


# fmt: off
#: Zero-area boxes against [0, 0, 2, 2]: A = 0 so IoU = 0 and iou = 1; GIoU's E is the target
#: (E - U = 0); the centres coincide (rho = 0); CIoU: atan2(w, h) of a point or a vertical
#: line differs from the target's pi/4 by pi/4: v = 4/pi^2 (pi/4)^2 = 1/4, alpha v =
#: v^2/(1 + v + eps). Two identical points: U = 0, E = 0, c = 0: every term 0/eps, loss 1.
CIOU_DEGENERATE = 1 + 0.25**2 / (1.25 + EPS)
ZERO_AREA = [
    pytest.param([1, 1, 1, 1], [0, 0, 2, 2], {"iou": 1, "giou": 1, "diou": 1,
                 "ciou": CIOU_DEGENERATE}, id="point-in-box"),
    pytest.param([1, 0, 1, 2], [0, 0, 2, 2], {"iou": 1, "giou": 1, "diou": 1,
                 "ciou": CIOU_DEGENERATE}, id="vertical-line"),
    pytest.param([1, 1, 1, 1], [1, 1, 1, 1], dict.fromkeys(VARIANTS, 1), id="two-same-points"),
]
# fmt: on


@pytest.mark.parametrize("box_format", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize(("predicted", "target", "losses"), ZERO_AREA)
def test_zero_area_boxes_are_valid_and_finite(
    client: TestClient,
    predicted: list[float],
    target: list[float],
    losses: dict[str, float],
    box_format: str,
) -> None:
    for variant, loss in losses.items():
        params = {"variant": variant, "box_format": box_format}
        boxes = {"predictions": [predicted], "targets": [target]}
        body = {
            **{key: in_format(value, box_format) for key, value in boxes.items()},
            "params": params,
        }
        result = post_loss(client, "box_iou", body)
        assert_finite(result)
        assert result["cost"] == pytest.approx(loss, rel=1e-12), variant


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_perfect_box_scores_0_with_gradient_0(client: TestClient, variant: str) -> None:
    """Identical boxes: 1 - A/(A + eps), i.e. 0 to within eps / area (LOSSES.md's eps). Each
    coordinate then sits at a kink of |d| / 2 shape (growing the box raises U, shrinking it
    lowers A), which is the loss's minimum: API.md, "at a kink the derivative is 0". The
    service splits tied min / max derivatives evenly (README), which leaves only the eps term
    of the exact derivative: |dIoU/da1| = (h / 2) eps / (A + eps)^2 = 6.25e-9 for this box."""
    box = [[0, 0, 2, 2]]
    body = {"predictions": box, "targets": box, "params": {"variant": variant}}
    result = post_loss(client, "box_iou", body)
    assert result["cost"] == pytest.approx(1 - 4 / (4 + EPS), rel=1e-9, abs=1e-15)
    assert np.abs(result["gradient"]).max() <= 2 / 2 * EPS / 4**2 * (1 + 1e-6)


def test_ciou_gradient_differentiates_alpha(client: TestClient) -> None:
    """LOSSES.md: the exact derivative, alpha included (torchvision holds alpha constant, which
    would differ from these central differences of the returned cost)."""
    body = {
        "predictions": [[0.25, 0, 2, 1]],
        "targets": [[0.5, 0.5, 1.5, 2]],
        "params": {"variant": "ciou"},
    }
    gradient = np.asarray(post_loss(client, "box_iou", body)["gradient"])[0]
    numeric = []
    for i in range(4):
        costs = []
        for step in (1e-6, -1e-6):
            moved = [list(body["predictions"][0])]
            moved[0][i] += step
            costs.append(post_loss(client, "box_iou", {**body, "predictions": moved})["cost"])
        numeric.append((costs[0] - costs[1]) / 2e-6)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)
