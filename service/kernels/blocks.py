r"""The transcendental parts of the categorical kernels, a block of samples at a time.

A categorical kernel's work per position is one ``exp`` per class (the softmax) or one ``log``
per class (clipped probabilities), then sums over the classes. Called class by class, the
class loop (C = 10, say) leaves a scalar remainder and a call per element, so it does not
vectorise. Here each step is its own loop over a block of samples: the peaks, the shifted
logits copied into a scratch buffer, then one flat loop of :func:`vmath.exp` (or
:func:`vmath.log`) over the whole block, which vectorises, then the sums over classes in the
order the kernels always used. What a position gets does not depend on the block it falls in,
so results are the same however a call is split over threads.

Scratch buffers hold a block of ``samples x C x S`` values (``S`` positions per sample):
:func:`block_samples` samples at a time, about :data:`BLOCK_VALUES` values, and never less
than one sample.
"""

import numpy as np

from service.kernels import vmath
from service.kernels.jit import kernel
from service.kernels.stable import clip

#: Values per block: the scratch (32 KiB) and the block's inputs stay in a core's L2 cache.
BLOCK_VALUES = 4096


@kernel
def block_samples(classes, positions):
    """Samples per block: about BLOCK_VALUES values, at least one sample."""
    return max(1, BLOCK_VALUES // max(1, classes * positions))


@kernel
def scratch(predictions):
    """Scratch buffers for one block of ``predictions[N, C, S]``: one value per entry, and
    two per position."""
    _, classes, positions = predictions.shape
    samples = block_samples(classes, positions)
    per_position = samples * positions
    return np.empty(samples * classes * positions), np.empty(per_position), np.empty(per_position)


@kernel
def softmax(predictions, first, stop, shifted, totals, log_z):
    r"""For the samples ``first`` to ``stop - 1`` of ``predictions[N, C, S]``: ``shifted[(b C +
    c) S + s]`` = :math:`e^{x_c - m}` (b = n - first, m the position's largest logit),
    ``totals[b S + s]`` = :math:`\sum_c e^{x_c - m}` and ``log_z[b S + s]`` = :math:`m + \log`
    of it; returns nothing.

    The sum runs over c in order, as the kernels' own loops did; its largest term is exactly 1,
    so it is in [1, C] and its log is finite.
    """
    _, classes, positions = predictions.shape
    if positions == 1:  # one position per sample: keep the peak in a register
        for b in range(stop - first):
            n = first + b
            peak = predictions[n, 0, 0]
            for c in range(1, classes):
                peak = max(peak, predictions[n, c, 0])
            for c in range(classes):
                shifted[b * classes + c] = predictions[n, c, 0] - peak
            log_z[b] = peak
    else:
        for b in range(stop - first):
            n = first + b
            base = b * positions
            for s in range(positions):
                log_z[base + s] = predictions[n, 0, s]
            for c in range(1, classes):
                for s in range(positions):
                    log_z[base + s] = max(log_z[base + s], predictions[n, c, s])
            for c in range(classes):
                row = (b * classes + c) * positions
                for s in range(positions):
                    shifted[row + s] = predictions[n, c, s] - log_z[base + s]
    count = (stop - first) * classes * positions
    for i in range(count):
        shifted[i] = vmath.exp(shifted[i])
    for b in range(stop - first):
        base = b * positions
        for s in range(positions):
            total = 0.0
            for c in range(classes):
                total += shifted[(b * classes + c) * positions + s]
            totals[base + s] = total
    for i in range((stop - first) * positions):
        log_z[i] = log_z[i] + vmath.log(totals[i])


@kernel
def fill(predictions, first, stop, from_logits, eps, values, totals, log_z):
    """A block's transcendental parts: :func:`softmax` for logits, else :func:`log_clipped`."""
    if from_logits:
        softmax(predictions, first, stop, values, totals, log_z)
    else:
        log_clipped(predictions, first, stop, eps, values)


@kernel
def copy_block(array, first, stop, out):
    """``out[(b C + c) S + s]`` = ``array[first + b, c, s]``: the samples ``first`` to
    ``stop - 1`` of ``array[N, C, S]``, flat, for a loop over all of them that vectorises.
    Returns how many values it wrote."""
    _, classes, positions = array.shape
    for b in range(stop - first):
        n = first + b
        for c in range(classes):
            row = (b * classes + c) * positions
            for s in range(positions):
                out[row + s] = array[n, c, s]
    return (stop - first) * classes * positions


@kernel
def log_clipped(predictions, first, stop, eps, out):
    r"""``out[(b C + c) S + s]`` = :math:`\log \operatorname{clip}(p, \epsilon, 1 - \epsilon)`
    for the samples ``first`` to ``stop - 1``."""
    for i in range(copy_block(predictions, first, stop, out)):
        out[i] = vmath.log(clip(out[i], eps, 1.0 - eps))


@kernel
def log_positive(targets, first, stop, out):
    r"""``out[(b C + c) S + s]`` = :math:`\log y` where y > 0 (0 elsewhere) for the samples
    ``first`` to ``stop - 1`` of ``targets[N, C, S]``."""
    for i in range(copy_block(targets, first, stop, out)):
        y = out[i]
        out[i] = vmath.log(y) if y > 0.0 else 0.0
