"""Bounding-box regression: IoU, GIoU, DIoU and CIoU losses (torchvision's formulas)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from service.kernels import boxes as kernels
from service.losses.fields import DenominatorEps
from service.losses.registry import Formula, LossSpec, Params, register
from service.validation.contracts import Batch, Boxes
from service.validation.domain import first_index
from service.validation.errors import DomainError, body_loc, index_text

VARIANTS = {"iou": kernels.IOU, "giou": kernels.GIOU, "diou": kernels.DIOU, "ciou": kernels.CIOU}
FORMATS = {"xyxy": kernels.XYXY, "xywh": kernels.XYWH, "cxcywh": kernels.CXCYWH}


class BoxParams(Params):
    variant: Literal["iou", "giou", "diou", "ciou"] = Field("iou", description="Which IoU loss.")
    box_format: Literal["xyxy", "xywh", "cxcywh"] = Field(
        "xyxy", description="xyxy corners; xywh corner + size; cxcywh centre + size."
    )
    eps: DenominatorEps = 1e-7


def box_domain(batch: Batch, params: BoxParams) -> None:
    """Inverted boxes (x2 < x1 or y2 < y1 once in corners; a negative size) are a 422."""
    for field, boxes in (("predictions", batch.predictions), ("targets", batch.targets)):
        if params.box_format == "xyxy":
            width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
            what = ("x2 < x1", "y2 < y1")
        else:
            width, height = boxes[..., 2], boxes[..., 3]
            what = ("width < 0", "height < 0")
        for size, problem in zip((width, height), what, strict=True):
            bad = size < 0
            if bad.any():
                index = first_index(bad)
                coordinates = ", ".join(f"{value:g}" for value in boxes[index])
                raise DomainError(
                    body_loc(field, *index),
                    f"{index_text(field, index)} = [{coordinates}] is an inverted box "
                    f"({problem} in {params.box_format}); zero-size boxes are allowed",
                )


BOX_IOU = register(
    LossSpec(
        name="box_iou",
        entry_seconds=40e-9,
        family="boxes",
        summary="IoU-based box regression loss: iou, giou, diou or ciou.",
        formula=Formula(
            loss="IoU = A / (U + eps); iou: 1 - IoU; giou: + (|E| - U) / (|E| + eps); "
            "diou: + rho^2 / (c^2 + eps); ciou: diou + alpha v, "
            "v = (4 / pi^2)(atan(w_t / h_t) - atan(w_p / h_p))^2, alpha = v / (1 - IoU + v + eps)",
            gradient="exact derivative of the returned value in the predictions' own format "
            "(alpha included); where predicted and target coordinates tie inside a min / max, "
            "the derivative through it is 1/2 (identical boxes get gradient 0)",
        ),
        params=BoxParams,
        contract=Boxes(),
        kernel=kernels.box_iou,
        kernel_args=lambda p: {"variant": VARIANTS[p.variant], "box_format": FORMATS[p.box_format]},
        example={
            "predictions": [[[0.0, 0.0, 2.0, 2.0]], [[1.0, 1.0, 4.0, 3.0]]],
            "targets": [[[1.0, 1.0, 3.0, 3.0]], [[1.0, 1.0, 4.0, 3.0]]],
            "params": {"variant": "giou"},
        },
        domain=box_domain,
        properties=frozenset({"nonnegative"}),
        references=(
            "torchvision.ops.generalized_box_iou_loss",
            "torchvision.ops.distance_box_iou_loss",
            "torchvision.ops.complete_box_iou_loss",
            "Rezatofighi et al. (2019); Zheng et al. (2020)",
        ),
        notes="torchvision computes CIoU's alpha under no_grad (a constant in the backward "
        "pass); here the gradient is the exact derivative of the returned value, alpha "
        "included. atan(w/h) is evaluated as atan2(w, h), so zero-size boxes stay finite.",
    )
)
