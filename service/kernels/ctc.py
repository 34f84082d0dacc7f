r"""Connectionist Temporal Classification (Graves et al., 2006), forward-backward in log space.

``predictions[N, T, C]``: probabilities (``log(clip(p, eps, 1))`` is used) or logits
(log-softmax over the last axis). ``labels[N, S]`` (entries past ``target_lengths[n]`` are
ignored), ``input_lengths[N]``, ``target_lengths[N]``. One element per sequence:
:math:`l_n = -\log p(\text{target} \mid \text{input})`, divided by :math:`\max(S_n, 1)` with
``length_normalized``.

With the extended label sequence :math:`l'` (blanks around and between the labels), the
forward and backward variables :math:`\alpha_t(s)`, :math:`\beta_t(s)` (each including frame
t's log-probability) give the occupancy :math:`\gamma_t(k) = \sum_{s: l'_s = k}
\exp(\alpha_t(s) + \beta_t(s) - \log y_t(l'_s) - \log p)`, and
:math:`\partial l/\partial \log y_t(k) = -\gamma_t(k)`. Then, for logits,
:math:`\partial l/\partial x_t(j) = q_t(j) \sum_k \gamma_t(k) - \gamma_t(j)` (log-softmax), and
for probabilities :math:`\partial l/\partial p_t(k) = -\gamma_t(k) / p_c` (at the clipped value).
Frames past ``input_lengths[n]`` get gradient 0. A sequence with :math:`p = 0` (infeasible;
the service refuses those unless ``zero_infinity``) gets loss 0 and gradient 0.
"""

import math

import numpy as np

from service.kernels.jit import kernel, scale_at
from service.kernels.stable import clip

NEGATIVE_INFINITY = -math.inf


@kernel
def _log_add(a, b):
    """log(exp(a) + exp(b)), exact for -inf operands."""
    if a == NEGATIVE_INFINITY:
        return b
    if b == NEGATIVE_INFINITY:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


@kernel
def ctc(
    predictions,
    labels,
    input_lengths,
    target_lengths,
    scale,
    losses,
    gradient,
    blank,
    from_logits,
    eps,
    length_normalized,
):
    samples, steps, classes = predictions.shape
    with_gradient = gradient.size != 0
    extended_size = 2 * labels.shape[1] + 1
    log_y = np.empty((steps, classes))
    alpha = np.empty((steps, extended_size))
    beta = np.empty((steps, extended_size))
    extended = np.empty(extended_size, dtype=np.int64)
    occupancy = np.empty(classes)
    for n in range(samples):
        frames = input_lengths[n]
        length = target_lengths[n]
        size = 2 * length + 1
        base = n * steps * classes
        if with_gradient:
            for i in range(steps * classes):
                gradient[base + i] = 0.0
        for t in range(frames):
            if from_logits:
                peak = predictions[n, t, 0]
                for c in range(1, classes):
                    peak = max(peak, predictions[n, t, c])
                total = 0.0
                for c in range(classes):
                    total += math.exp(predictions[n, t, c] - peak)
                log_z = peak + math.log(total)
                for c in range(classes):
                    log_y[t, c] = predictions[n, t, c] - log_z
            else:
                for c in range(classes):
                    log_y[t, c] = math.log(clip(predictions[n, t, c], eps, 1.0))
        for s in range(size):
            extended[s] = blank if s % 2 == 0 else labels[n, (s - 1) // 2]
        # Forward.
        for s in range(size):
            alpha[0, s] = NEGATIVE_INFINITY
        alpha[0, 0] = log_y[0, extended[0]]
        if size > 1:
            alpha[0, 1] = log_y[0, extended[1]]
        for t in range(1, frames):
            for s in range(size):
                total = alpha[t - 1, s]
                if s >= 1:
                    total = _log_add(total, alpha[t - 1, s - 1])
                if s >= 2 and extended[s] != blank and extended[s] != extended[s - 2]:
                    total = _log_add(total, alpha[t - 1, s - 2])
                alpha[t, s] = total + log_y[t, extended[s]] if total != NEGATIVE_INFINITY else total
        log_p = alpha[frames - 1, size - 1]
        if size > 1:
            log_p = _log_add(log_p, alpha[frames - 1, size - 2])
        if log_p == NEGATIVE_INFINITY:  # infeasible: zero_infinity
            losses[n] = 0.0
            continue
        norm = float(max(length, 1)) if length_normalized else 1.0
        losses[n] = -log_p / norm
        if not with_gradient:
            continue
        # Backward.
        for s in range(size):
            beta[frames - 1, s] = NEGATIVE_INFINITY
        beta[frames - 1, size - 1] = log_y[frames - 1, extended[size - 1]]
        if size > 1:
            beta[frames - 1, size - 2] = log_y[frames - 1, extended[size - 2]]
        for t in range(frames - 2, -1, -1):
            for s in range(size):
                total = beta[t + 1, s]
                if s + 1 < size:
                    total = _log_add(total, beta[t + 1, s + 1])
                if s + 2 < size and extended[s] != blank and extended[s] != extended[s + 2]:
                    total = _log_add(total, beta[t + 1, s + 2])
                beta[t, s] = total + log_y[t, extended[s]] if total != NEGATIVE_INFINITY else total
        factor = scale_at(scale, n) / norm
        for t in range(frames):
            for c in range(classes):
                occupancy[c] = 0.0
            for s in range(size):
                both = alpha[t, s] + beta[t, s]
                if both != NEGATIVE_INFINITY:
                    occupancy[extended[s]] += math.exp(both - log_y[t, extended[s]] - log_p)
            row = base + t * classes
            if from_logits:
                occupied = 0.0
                for c in range(classes):
                    occupied += occupancy[c]
                for c in range(classes):
                    q = math.exp(log_y[t, c])
                    gradient[row + c] = factor * (q * occupied - occupancy[c])
            else:
                for c in range(classes):
                    gradient[row + c] = (
                        factor * -occupancy[c] / clip(predictions[n, t, c], eps, 1.0)
                    )
