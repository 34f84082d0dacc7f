r"""Box regression kernels: IoU, GIoU, DIoU and CIoU losses (torchvision's formulas).

``predictions[M, 4]``, ``targets[M, 4]`` in ``box_format`` (0 = xyxy, 1 = xywh corner + size,
2 = cxcywh centre + size); one element per box. ``variant``: 0 = iou, 1 = giou, 2 = diou,
3 = ciou. The gradient is the exact derivative of the returned value with respect to the
predictions in their own format: every intermediate is differentiated in the corner
coordinates (a1, b1, a2, b2), then carried back through the (linear) format conversion.
Where a predicted and a target coordinate tie inside a min or max (a kink), the derivative
through it is split evenly, 1/2 each: the mean of the one-sided derivatives, which makes the
gradient 0 for a prediction identical to its target. CIoU's :math:`\alpha = v / (1 - IoU + v +
\epsilon)` is differentiated too (torchvision holds it constant).
"""

import math

import numpy as np

from service.kernels.jit import kernel, scale_at

IOU, GIOU, DIOU, CIOU = 0, 1, 2, 3
XYXY, XYWH, CXCYWH = 0, 1, 2
ASPECT = 4.0 / math.pi**2


@kernel
def _corners(box, box_format):
    if box_format == XYXY:
        return box[0], box[1], box[2], box[3]
    if box_format == XYWH:
        return box[0], box[1], box[0] + box[2], box[1] + box[3]
    return (
        box[0] - 0.5 * box[2],
        box[1] - 0.5 * box[3],
        box[0] + 0.5 * box[2],
        box[1] + 0.5 * box[3],
    )


@kernel
def _wins(first, second):
    """The derivative of max(first, second) in ``first`` (equally, of min(second, first)):
    1 if larger, 0 if smaller, 1/2 at a tie, the mean of the one-sided derivatives (identical
    boxes then get gradient 0)."""
    if first > second:
        return 1.0
    if first < second:
        return 0.0
    return 0.5


@kernel
def box_iou(predictions, targets, scale, losses, gradient, variant, box_format, eps):
    """Loss and gradient of every box; see the module docstring for the conventions."""
    with_gradient = gradient.size != 0
    g = np.empty(4)  # d loss / d (a1, b1, a2, b2)
    for i in range(predictions.shape[0]):
        a1, b1, a2, b2 = _corners(predictions[i], box_format)
        c1, d1, c2, d2 = _corners(targets[i], box_format)
        wp, hp = a2 - a1, b2 - b1
        wt, ht = c2 - c1, d2 - d1
        # Intersection (clamped at 0) and its derivatives in (a1, b1, a2, b2).
        iw = min(a2, c2) - max(a1, c1)
        ih = min(b2, d2) - max(b1, d1)
        diw1 = -_wins(a1, c1) if iw > 0.0 else 0.0
        diw2 = _wins(c2, a2) if iw > 0.0 else 0.0
        dih1 = -_wins(b1, d1) if ih > 0.0 else 0.0
        dih2 = _wins(d2, b2) if ih > 0.0 else 0.0
        iw = max(iw, 0.0)
        ih = max(ih, 0.0)
        inter = iw * ih
        d_inter = (ih * diw1, iw * dih1, ih * diw2, iw * dih2)
        # Union = area_p + area_t - intersection; d area_p = (-hp, -wp, hp, wp).
        union = wp * hp + wt * ht - inter
        d_area = (-hp, -wp, hp, wp)
        denominator = union + eps
        iou = inter / denominator
        d_iou = np.empty(4)
        for k in range(4):
            d_union = d_area[k] - d_inter[k]
            d_iou[k] = (d_inter[k] * denominator - inter * d_union) / denominator**2
        loss = 1.0 - iou
        for k in range(4):
            g[k] = -d_iou[k]
        if variant != IOU:
            # Smallest enclosing box.
            ew = max(a2, c2) - min(a1, c1)
            eh = max(b2, d2) - min(b1, d1)
            dew1 = -_wins(c1, a1)
            dew2 = _wins(a2, c2)
            deh1 = -_wins(d1, b1)
            deh2 = _wins(b2, d2)
            if variant == GIOU:
                area = ew * eh
                d_e = (eh * dew1, ew * deh1, eh * dew2, ew * deh2)
                shifted = area + eps
                loss += (area - union) / shifted
                for k in range(4):
                    d_union = d_area[k] - d_inter[k]
                    g[k] += ((d_e[k] - d_union) * shifted - (area - union) * d_e[k]) / shifted**2
            else:
                diagonal = ew * ew + eh * eh + eps
                d_diagonal = (2.0 * ew * dew1, 2.0 * eh * deh1, 2.0 * ew * dew2, 2.0 * eh * deh2)
                dx = 0.5 * (a1 + a2) - 0.5 * (c1 + c2)
                dy = 0.5 * (b1 + b2) - 0.5 * (d1 + d2)
                rho = dx * dx + dy * dy
                d_rho = (dx, dy, dx, dy)
                loss += rho / diagonal
                for k in range(4):
                    g[k] += (d_rho[k] * diagonal - rho * d_diagonal[k]) / diagonal**2
                if variant == CIOU:
                    # atan2 keeps zero-size boxes finite (atan2(0, 0) = 0).
                    phi = math.atan2(wt, ht) - math.atan2(wp, hp)
                    v = ASPECT * phi * phi
                    radius = wp * wp + hp * hp
                    dv_dw = -2.0 * ASPECT * phi * hp / radius if radius > 0.0 else 0.0
                    dv_dh = 2.0 * ASPECT * phi * wp / radius if radius > 0.0 else 0.0
                    d_v = (-dv_dw, -dv_dh, dv_dw, dv_dh)
                    q = 1.0 - iou + v + eps
                    loss += v * v / q  # alpha v with alpha = v / q, differentiated
                    for k in range(4):
                        d_q = -d_iou[k] + d_v[k]
                        g[k] += (2.0 * v * d_v[k] * q - v * v * d_q) / q**2
        losses[i] = loss
        if with_gradient:
            s = scale_at(scale, i)
            if box_format == XYXY:
                gradient[4 * i] = s * g[0]
                gradient[4 * i + 1] = s * g[1]
                gradient[4 * i + 2] = s * g[2]
                gradient[4 * i + 3] = s * g[3]
            elif box_format == XYWH:  # a1 = x, a2 = x + w
                gradient[4 * i] = s * (g[0] + g[2])
                gradient[4 * i + 1] = s * (g[1] + g[3])
                gradient[4 * i + 2] = s * g[2]
                gradient[4 * i + 3] = s * g[3]
            else:  # a1 = cx - w / 2, a2 = cx + w / 2
                gradient[4 * i] = s * (g[0] + g[2])
                gradient[4 * i + 1] = s * (g[1] + g[3])
                gradient[4 * i + 2] = s * 0.5 * (g[2] - g[0])
                gradient[4 * i + 3] = s * 0.5 * (g[3] - g[1])
