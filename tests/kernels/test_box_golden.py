"""box_iou: hand-checked values, torchvision's own test values, degenerate boxes, formats as
reparametrisations, and ciou's alpha in the gradient.

"By hand" means from the formulas in ../shared/LOSSES.md ("Boxes"), worked out on paper; the
eps terms are kept where the formula has them (IoU = A / (U + eps), ...), so the expected value
is exact up to float64 rounding. Each box pair is sent alone with reduction "sum", so the cost
is the element loss and the gradient its derivative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from tests.reference.gradients import finite_difference_gradient
from tests.reference.structured import box_loss
from tests.strategies.samplers import Case, random_case
from tests.strategies.structured import from_corners
from tests.support.engine import compute_case
from tests.support.engine import run_loss as run

EPS = 1e-7
VARIANTS = ("iou", "giou", "diou", "ciou")


def approx(value, rel=1e-14, abs=0.0):
    return pytest.approx(value, rel=rel, abs=abs)


def box(name_or_variant: str, predicted, target, **params):
    """One box pair, reduction sum: the element loss and its gradient (4,)."""
    result = run("box_iou", [predicted], [target], {"variant": name_or_variant} | params)
    return result.cost, result.gradient[0]


# torchvision's test/test_ops.py (TestGeneralizedBoxIouLoss, after fvcore's test_giou_loss, and
# TestCIOULoss): box1 = (-1, -1, 1, 1), box2 = (0, 0, 1, 1), box3 = (0, 1, 1, 2),
# box4 = (1, 1, 2, 2), compared there to 1e-5. Re-derived by hand with the eps terms:
# giou(1, 1) = 1 - 4/(4 + eps); giou(1, 2): A = 1, U = |E| = 4: 1 - 1/(4 + eps);
# giou(2, 3) (side by side): A = 0, |E| = U = 2: 1; giou(2, 4) (diagonal): |E| = 4, U = 2:
# 1 + 2/(4 + eps). ciou of squares is diou (v = 0): (1, 2) rho^2 = 1/2, c^2 = 8:
# 1 - 1/(4 + eps) + 0.5/(8 + eps) = 0.8125; (1, 3): A = 0, rho^2 = 2.5, c^2 = 13: 1.1923;
# (1, 4): rho^2 = 4.5, c^2 = 18: 1.25; (2, 3): rho^2 = 1, c^2 = 5; (2, 4): rho^2 = 2, c^2 = 8:
# mean 1.225.
BOX1, BOX2, BOX3, BOX4 = [-1, -1, 1, 1], [0, 0, 1, 1], [0, 1, 1, 2], [1, 1, 2, 2]
TORCHVISION = [
    ("giou", BOX1, BOX1, 0.0, 1 - 4 / (4 + EPS)),
    ("giou", BOX1, BOX2, 0.75, 1 - 1 / (4 + EPS)),
    ("giou", BOX2, BOX3, 1.0, 1.0),
    ("giou", BOX2, BOX4, 1.5, 1 + 2 / (4 + EPS)),
    ("ciou", BOX1, BOX1, 0.0, 1 - 4 / (4 + EPS)),
    ("ciou", BOX1, BOX2, 0.8125, 1 - 1 / (4 + EPS) + 0.5 / (8 + EPS)),
    ("ciou", BOX1, BOX3, 1.1923, 1 + 2.5 / (13 + EPS)),
    ("ciou", BOX1, BOX4, 1.25, 1 + 4.5 / (18 + EPS)),
]


@pytest.mark.parametrize(("variant", "predicted", "target", "torchvision", "exact"), TORCHVISION)
def test_torchvision_test_values(variant, predicted, target, torchvision, exact):
    loss, gradient = box(variant, predicted, target)
    assert loss == approx(exact)
    assert loss == approx(torchvision, abs=5e-5)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize(
    ("variant", "total"),
    [("giou", 1.0 + 1 + 2 / (4 + EPS)), ("ciou", 2 + 1 / (5 + EPS) + 2 / (8 + EPS))],
)
def test_torchvision_batched_values(variant, total):
    # torchvision: box2 against (box3, box4), sum 2.5 (giou) and 2.45 (ciou), mean half of it.
    for reduction, expected in (("sum", total), ("mean", total / 2)):
        result = run("box_iou", [BOX2, BOX2], [BOX3, BOX4], {"variant": variant}, reduction)
        assert result.cost == approx(expected)
    assert total == approx({"giou": 2.5, "ciou": 2.45}[variant], 1e-7)


# p = (0, 0, 2, 2), t = (1, 1, 3, 3), by hand: A = 1, U = 4 + 4 - 1 = 7, enclosing box
# (0, 0, 3, 3): |E| = 9, c^2 = 18; centres (1, 1), (2, 2): rho^2 = 2; equal aspect ratios:
# v = 0, so alpha v = 0 and ciou = diou.
OVERLAPPING = [
    ("iou", 1 - 1 / (7 + EPS)),
    ("giou", 1 - 1 / (7 + EPS) + 2 / (9 + EPS)),  # 68/63 without eps
    ("diou", 1 - 1 / (7 + EPS) + 2 / (18 + EPS)),  # 61/63 without eps
    ("ciou", 1 - 1 / (7 + EPS) + 2 / (18 + EPS)),
]


@pytest.mark.parametrize(("variant", "expected"), OVERLAPPING)
def test_overlapping_boxes_by_hand(variant, expected):
    assert box(variant, [0, 0, 2, 2], [1, 1, 3, 3])[0] == approx(expected)
    # The same boxes as (x1, y1, w, h) and (cx, cy, w, h).
    assert box(variant, [0, 0, 2, 2], [1, 1, 2, 2], box_format="xywh")[0] == approx(expected)
    assert box(variant, [1, 1, 2, 2], [2, 2, 2, 2], box_format="cxcywh")[0] == approx(expected)


def test_ciou_by_hand():
    """p = (0, 0, 2, 1) (w 2, h 1), t = (0, 0, 1, 2): A = 1, U = 3, IoU = 1 / (3 + eps);
    centres (1, 1/2), (1/2, 1): rho^2 = 1/2; enclosing (0, 0, 2, 2): c^2 = 8. atan(1/2) -
    atan(2) = -(pi/2 - 2 atan(1/2)) = -atan(3/4) (tan of the double angle: (2 * 1/2) / (1 -
    1/4) = 4/3), so v = (4 / pi^2) atan(3/4)^2 and alpha = v / (1 - IoU + v + eps)."""
    iou = 1 / (3 + EPS)
    v = 4 / math.pi**2 * math.atan(0.75) ** 2
    expected = 1 - iou + 0.5 / (8 + EPS) + v / (1 - iou + v + EPS) * v
    assert box("ciou", [0, 0, 2, 1], [0, 0, 1, 2])[0] == approx(expected, 1e-13)


@pytest.mark.parametrize("variant", VARIANTS)
def test_identical_boxes_lose_only_the_eps_share(variant):
    # By hand: A = U = |E| = 4, rho = 0, v = 0: every variant is 1 - 4 / (4 + eps) =
    # eps / (4 + eps) ~ 2.5e-8 (the eps in IoU's denominator); 0 to ~1e-8.
    loss, _ = box(variant, [1, 2, 3, 4], [1, 2, 3, 4])
    assert loss == approx(EPS / (4 + EPS), 1e-7)
    assert loss == approx(0.0, abs=3e-8)


def test_disjoint_boxes():
    """p = (0, 0, 1, 1), t = (2, 0.5, 3, 1.5): A = 0, U = 2, |E| = 3 x 1.5 = 4.5. By hand:
    iou 1 with no gradient at all (IoU = 0 on a neighbourhood); giou 1 + 2.5 / (4.5 + eps) > 1;
    diou 1 + rho^2 / c^2 with rho^2 = 2^2 + 0.5^2 = 4.25, c^2 = 9 + 2.25."""
    predicted, target = [0, 0, 1, 1], [2, 0.5, 3, 1.5]
    loss, gradient = box("iou", predicted, target)
    assert loss == 1.0
    assert gradient.tolist() == [0.0, 0.0, 0.0, 0.0]
    giou, gradient = box("giou", predicted, target)
    assert giou == approx(1 + 2.5 / (4.5 + EPS)) and giou > 1.0
    assert np.all(gradient != 0.0)
    assert box("diou", predicted, target)[0] == approx(1 + 4.25 / (11.25 + EPS))


@pytest.mark.parametrize("variant", VARIANTS)
def test_zero_area_boxes_are_finite(variant):
    """A point against itself: A = U = |E| = c^2 = 0, so IoU = 0 / eps = 0 and every variant
    is exactly 1 (giou's and diou's terms are 0 / eps; v = (atan2(0, 0) - atan2(0, 0))^2 = 0).
    A zero-width box (1, 0, 1, 2) inside t = (0, 0, 2, 2): A = 0, IoU 0, same centre (rho 0),
    c^2 = 8, |E| = U = 4; v = (4/pi^2)(atan2(2, 2) - atan2(0, 2))^2 = (4/pi^2)(pi/4)^2 = 1/4,
    alpha = (1/4) / (1 + 1/4 + eps)."""
    loss, gradient = box(variant, [1, 1, 1, 1], [1, 1, 1, 1])
    assert loss == 1.0
    assert np.all(np.isfinite(gradient))
    loss, gradient = box(variant, [1, 0, 1, 2], [0, 0, 2, 2])
    expected = {"iou": 1.0, "giou": 1.0, "diou": 1.0, "ciou": 1 + 0.25 / (1.25 + EPS) * 0.25}
    assert loss == approx(expected[variant], 1e-15)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("variant", VARIANTS)
def test_formats_are_reparametrisations(variant):
    """The same boxes in every format: equal losses, and gradients related by the chain rule.
    xywh: x2 = x + w, so dl/dx = dl/dx1 + dl/dx2 and dl/dw = dl/dx2; cxcywh: x1, x2 = cx -+ w/2,
    so dl/dcx = dl/dx1 + dl/dx2 and dl/dw = (dl/dx2 - dl/dx1) / 2 (the same for y)."""
    rng = np.random.default_rng(21)
    case = random_case("box_iou", rng, rank=3, kind=f"{variant}/xyxy", smooth=True)
    xyxy = run("box_iou", case.predictions, case.targets, {"variant": variant})
    low, high = xyxy.gradient[..., :2], xyxy.gradient[..., 2:]
    chain_rule = {
        "xywh": np.concatenate([low + high, high], -1),
        "cxcywh": np.concatenate([low + high, (high - low) / 2], -1),
    }
    for box_format, expected in chain_rule.items():
        result = run(
            "box_iou",
            from_corners(case.predictions, box_format),
            from_corners(case.targets, box_format),
            {"variant": variant, "box_format": box_format},
        )
        np.testing.assert_allclose(result.per_sample, xyxy.per_sample, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(result.gradient, expected, rtol=1e-9, atol=1e-12)


def test_ciou_gradient_differentiates_alpha():
    """LOSSES.md: the gradient is the derivative of the returned value, alpha included
    (torchvision holds alpha constant). On boxes of different aspect ratios the two differ;
    the service's is the central difference of the reference, the alpha-constant one is not."""
    predicted, target = [0.2, 0.1, 2.3, 1.2], [0.0, -0.4, 1.1, 2.0]
    case = Case("box_iou", np.array([predicted]), np.array([target]), {"variant": "ciou"})
    result = compute_case(case, "sum")
    exact = finite_difference_gradient(case, "sum")
    np.testing.assert_allclose(result.gradient, exact, rtol=1e-6, atol=1e-10)

    def aspect(p: list[float]) -> float:
        """v = (4 / pi^2)(atan2(w_t, h_t) - atan2(w_p, h_p))^2."""
        return 4 / math.pi**2 * (math.atan2(1.1, 2.4) - math.atan2(p[2] - p[0], p[3] - p[1])) ** 2

    iou = 1 - box_loss(predicted, target, {"variant": "iou"})
    alpha = aspect(predicted) / (1 - iou + aspect(predicted) + EPS)

    def held(p: list[float]) -> float:
        """ciou with alpha frozen at its value at ``predicted``: diou + alpha v."""
        return box_loss(p, target, {"variant": "diou"}) + alpha * aspect(p)

    assert held(predicted) == approx(box_loss(predicted, target, {"variant": "ciou"}), 1e-15)
    step = 1e-6
    constant = [
        (held(list(np.add(predicted, step * e))) - held(list(np.subtract(predicted, step * e))))
        / (2 * step)
        for e in np.eye(4)
    ]
    assert np.max(np.abs(result.gradient[0] - constant)) > 1e-3
