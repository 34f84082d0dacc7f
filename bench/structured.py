"""Structured-loss benchmark at realistic sizes, against vectorised NumPy in the same run.

    python -m bench.structured [--repeats 5]

- dice / jaccard / tversky: multiclass segmentation, logits (8, 4, 256, 256), class map targets;
- box_iou (giou): 100,000 box pairs;
- sequence_cross_entropy: logits (32, 128, 1000);
- ctc: logits (32, 200, 30), targets of length 50 (issue 4's sizes).

Each row: the engine's full ``compute`` (validation, weights, kernel, reduction) and the kernel
path alone, against a NumPy implementation of the same loss and mean-cost gradient; the
speed-up is NumPy time / kernel time.
"""

from __future__ import annotations

import argparse

import numpy as np

import service.losses  # noqa: F401
from bench.kernels import best_time
from service.compute.engine import compute
from service.losses.registry import REGISTRY
from service.validation.contracts import Inputs


def softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def numpy_overlap(name, x, labels, alpha=0.5, beta=0.5, smooth=1.0, eps=1e-7):
    """Multiclass, softmax over axis 1, integer class map; mean over (sample, class)."""
    n, c = x.shape[:2]
    q = softmax(x, 1).reshape(n, c, -1)
    y = (labels.reshape(n, 1, -1) == np.arange(c)[None, :, None]).astype(np.float64)
    inter, pred, truth = (q * y).sum(2), q.sum(2), y.sum(2)
    if name == "dice":
        den = np.maximum(pred + truth + smooth, eps)
        loss = 1 - (2 * inter + smooth) / den
        d_i, d_p = -2 / den, (2 * inter + smooth) / den**2
    elif name == "jaccard":
        den = np.maximum(pred + truth - inter + smooth, eps)
        loss = 1 - (inter + smooth) / den
        d_i, d_p = -(den + inter + smooth) / den**2, (inter + smooth) / den**2
    else:
        den = np.maximum((1 - alpha - beta) * inter + alpha * pred + beta * truth + smooth, eps)
        loss = 1 - (inter + smooth) / den
        d_i = -(den - (inter + smooth) * (1 - alpha - beta)) / den**2
        d_p = alpha * (inter + smooth) / den**2
    scale = 1.0 / (n * c)
    local = scale * (d_i[:, :, None] * y + d_p[:, :, None])
    grad = q * (local - (q * local).sum(1, keepdims=True))
    return loss, grad.reshape(x.shape)


def numpy_giou(p, t, eps=1e-7):
    """GIoU loss and gradient for xyxy boxes (M, 4); mean over boxes."""
    a1, b1, a2, b2 = p.T
    c1, d1, c2, d2 = t.T
    wp, hp = a2 - a1, b2 - b1
    iw_raw = np.minimum(a2, c2) - np.maximum(a1, c1)
    ih_raw = np.minimum(b2, d2) - np.maximum(b1, d1)
    iw, ih = np.maximum(iw_raw, 0), np.maximum(ih_raw, 0)
    inter = iw * ih
    union = wp * hp + (c2 - c1) * (d2 - d1) - inter
    den = union + eps
    iou = inter / den
    ew = np.maximum(a2, c2) - np.minimum(a1, c1)
    eh = np.maximum(b2, d2) - np.minimum(b1, d1)
    area = ew * eh
    loss = 1 - iou + (area - union) / (area + eps)
    d_inter = np.stack(
        [
            -ih * ((iw_raw > 0) & (a1 > c1)),
            -iw * ((ih_raw > 0) & (b1 > d1)),
            ih * ((iw_raw > 0) & (a2 < c2)),
            iw * ((ih_raw > 0) & (b2 < d2)),
        ]
    )
    d_union = np.stack([-hp, -wp, hp, wp]) - d_inter
    d_area = np.stack([-eh * (a1 < c1), -ew * (b1 < d1), eh * (a2 > c2), ew * (b2 > d2)])
    d_iou = (d_inter * den - inter * d_union) / den**2
    d_term = ((d_area - d_union) * (area + eps) - (area - union) * d_area) / (area + eps) ** 2
    return loss, ((-d_iou + d_term) / p.shape[0]).T


def numpy_sequence_ce(x, labels):
    c = x.shape[2]
    shifted = x - x.max(axis=2, keepdims=True)
    log_q = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    rows = labels.reshape(-1)
    flat = log_q.reshape(-1, c)
    loss = -flat[np.arange(flat.shape[0]), rows]
    grad = np.exp(flat)
    grad[np.arange(flat.shape[0]), rows] -= 1.0
    return loss, (grad / flat.shape[0]).reshape(x.shape)


def numpy_ctc(x, labels, blank=0):
    """Log-space forward-backward, vectorised over samples and extended positions; loops over
    time. Full-length inputs and targets; mean over samples."""
    n, t_max, c = x.shape
    shifted = x - x.max(axis=2, keepdims=True)
    log_y = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    size = 2 * labels.shape[1] + 1
    ext = np.full((n, size), blank)
    ext[:, 1::2] = labels
    skip = np.zeros((n, size), dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    emit = np.take_along_axis(log_y, np.broadcast_to(ext[:, None, :], (n, t_max, size)), axis=2)
    alpha = np.full((t_max, n, size), -np.inf)
    alpha[0, :, :2] = emit[:, 0, :2]
    for t in range(1, t_max):
        prev = alpha[t - 1]
        total = prev.copy()
        total[:, 1:] = np.logaddexp(total[:, 1:], prev[:, :-1])
        total[:, 2:] = np.where(skip[:, 2:], np.logaddexp(total[:, 2:], prev[:, :-2]), total[:, 2:])
        alpha[t] = total + emit[:, t]
    log_p = np.logaddexp(alpha[-1, :, -1], alpha[-1, :, -2])
    beta = np.full((t_max, n, size), -np.inf)
    beta[-1, :, -2:] = emit[:, -1, -2:]
    skip_next = np.zeros((n, size), dtype=bool)
    skip_next[:, :-2] = skip[:, 2:]
    for t in range(t_max - 2, -1, -1):
        nxt = beta[t + 1]
        total = nxt.copy()
        total[:, :-1] = np.logaddexp(total[:, :-1], nxt[:, 1:])
        total[:, :-2] = np.where(
            skip_next[:, :-2], np.logaddexp(total[:, :-2], nxt[:, 2:]), total[:, :-2]
        )
        beta[t] = total + emit[:, t]
    posterior = np.exp(alpha + beta - np.transpose(emit, (1, 0, 2)) - log_p[None, :, None])
    occupancy = np.zeros((n, t_max, c))
    for s in range(size):
        np.add.at(
            occupancy,
            (np.arange(n)[:, None], np.arange(t_max)[None, :], ext[:, s][:, None]),
            posterior[:, :, s].T,
        )
    grad = (np.exp(log_y) * occupancy.sum(2, keepdims=True) - occupancy) / n
    return -log_p, grad


def cases(rng):
    seg = rng.normal(size=(8, 4, 256, 256))
    seg_labels = rng.integers(0, 4, (8, 256, 256))
    corners = rng.uniform(0, 50, (100_000, 2))
    boxes_p = np.concatenate([corners, corners + rng.uniform(1, 20, (100_000, 2))], 1)
    jitter = boxes_p + rng.normal(0, 2, boxes_p.shape)
    boxes_t = np.concatenate([jitter[:, :2], np.maximum(jitter[:, 2:], jitter[:, :2] + 0.5)], 1)
    seq = rng.normal(size=(32, 128, 1000))
    seq_labels = rng.integers(0, 1000, (32, 128))
    ctc_x = rng.normal(size=(32, 200, 30))
    ctc_labels = rng.integers(1, 30, (32, 50))
    multiclass = {"mode": "multiclass", "from_logits": True}
    return [
        ("dice", seg, seg_labels, multiclass, lambda: numpy_overlap("dice", seg, seg_labels)),
        ("jaccard", seg, seg_labels, multiclass, lambda: numpy_overlap("jaccard", seg, seg_labels)),
        ("tversky", seg, seg_labels, multiclass, lambda: numpy_overlap("tversky", seg, seg_labels)),
        ("box_iou", boxes_p, boxes_t, {"variant": "giou"}, lambda: numpy_giou(boxes_p, boxes_t)),
        ("sequence_cross_entropy", seq, seq_labels, {"from_logits": True},
         lambda: numpy_sequence_ce(seq, seq_labels)),
        ("ctc", ctc_x, ctc_labels, {"from_logits": True, "target_lengths": [50] * 32},
         lambda: numpy_ctc(ctc_x, ctc_labels)),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"# structured losses vs vectorised NumPy; best of {args.repeats}")
    print(
        "| loss | input | engine.compute ms | kernel ms | NumPy ms | speed-up (kernel) | max rel diff |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, predictions, targets, params, baseline in cases(rng):
        spec = REGISTRY[name]
        model = spec.params(**params)
        inputs = Inputs(predictions, targets.astype(np.float64))
        batch = spec.contract.prepare(inputs, model)
        n_elements = batch.n_samples * batch.elements_per_sample
        arguments = spec.kernel_arguments(model)

        def kernel_path(batch=batch, n_elements=n_elements, spec=spec, arguments=arguments):
            scale = np.full(n_elements, 1.0 / n_elements)
            losses = np.empty(n_elements)
            gradient = np.empty(batch.gradient_shape)
            spec.kernel(*batch.kernel_arrays, scale, losses, gradient.reshape(-1), *arguments)
            return losses, gradient

        losses, gradient = kernel_path()
        reference_losses, reference_gradient = baseline()
        difference = max(
            np.abs(losses - np.ravel(reference_losses)).max() / np.abs(reference_losses).max(),
            np.abs(gradient - reference_gradient).max() / np.abs(reference_gradient).max(),
        )
        full = best_time(
            lambda spec=spec, inputs=inputs, model=model: compute(spec, inputs, model),
            args.repeats,
        )
        kernel_only = best_time(kernel_path, args.repeats)
        numpy_time = best_time(baseline, args.repeats)
        print(
            f"| {name} | {tuple(predictions.shape)} | {full * 1e3:.1f} | {kernel_only * 1e3:.1f} | "
            f"{numpy_time * 1e3:.1f} | {numpy_time / kernel_only:.1f}x | {difference:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
