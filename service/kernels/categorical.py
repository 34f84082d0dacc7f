r"""Categorical kernels: a softmax (or probability) vector over the class axis per position.

Arrays arrive as views ``predictions[N, C, S]`` (S = product of the spatial axes, 1 for plain
classification), dense ``targets[N, C, S]`` or integer ``labels[N, S]``. An element is a
position (n, s): ``losses[n * S + s]``, ``scale[n * S + s]``; the gradient is flat in the
predictions' layout, ``gradient[(n * C + c) * S + s]``.

Logits use log-softmax with the maximum shifted out,
:math:`\log q_c = x_c - m - \log \sum_k e^{x_k - m}`, :math:`m = \max_k x_k`: no exponential
overflows and :math:`\log q_c` stays finite where :math:`q_c` underflows to 0.
Probabilities are clipped, :math:`q_c = \operatorname{clip}(p_c, \epsilon, 1 - \epsilon)`,
and derivatives are evaluated at the clipped value.
"""

import numpy as np

from service.kernels import blocks, vmath
from service.kernels.jit import kernel, scale_at
from service.kernels.stable import clip


@kernel
def categorical_cross_entropy(
    predictions, targets, scale, losses, gradient, from_logits, smoothing, eps
):
    r"""The loss and gradient that record ``CATEGORICAL_CROSS_ENTROPY``
    (service/losses/categorical.py) states.

    Logits through a log-sum-exp per position; soft targets need not sum to 1 (the gradient's
    :math:`q_c \sum_k y'_k` term). Probabilities clipped to :math:`[\epsilon, 1 - \epsilon]`.
    The exponentials and logs come a block of samples at a time (:mod:`.blocks`).
    """
    samples, classes, positions = predictions.shape
    with_gradient = gradient.size != 0
    values, totals, log_z = blocks.scratch(predictions)
    block = blocks.block_samples(classes, positions)
    for first in range(0, samples, block):
        stop = min(first + block, samples)
        blocks.fill(predictions, first, stop, from_logits, eps, values, totals, log_z)
        for n in range(first, stop):
            for s in range(positions):
                element = n * positions + s
                at = ((n - first) * classes) * positions + s  # values[at + c * positions]
                loss = 0.0
                if from_logits:
                    z = log_z[(n - first) * positions + s]
                    target_sum = 0.0
                    for c in range(classes):
                        y = targets[n, c, s] * (1.0 - smoothing) + smoothing / classes
                        target_sum += y
                        loss += y * (z - predictions[n, c, s])
                    if with_gradient:
                        total = totals[(n - first) * positions + s]
                        for c in range(classes):
                            y = targets[n, c, s] * (1.0 - smoothing) + smoothing / classes
                            q = values[at + c * positions] / total
                            gradient[(n * classes + c) * positions + s] = scale_at(
                                scale, element
                            ) * (q * target_sum - y)
                else:
                    for c in range(classes):
                        y = targets[n, c, s] * (1.0 - smoothing) + smoothing / classes
                        loss -= y * values[at + c * positions]
                        if with_gradient:
                            q = clip(predictions[n, c, s], eps, 1.0 - eps)
                            gradient[(n * classes + c) * positions + s] = scale_at(
                                scale, element
                            ) * (-y / q)
                losses[element] = loss


@kernel
def sparse_categorical_cross_entropy(
    predictions, labels, scale, losses, gradient, from_logits, smoothing, eps
):
    r"""The loss and gradient that records ``SPARSE_CATEGORICAL_CROSS_ENTROPY``
    (service/losses/categorical.py) and ``SEQUENCE_CROSS_ENTROPY`` (service/losses/sequence.py)
    state.

    Logits: :math:`l = \log Z - \sum_c y'_c x_c` with :math:`\log Z` a log-sum-exp. A label
    outside [0, C) (``ignore_index``; its weight is 0) gives loss 0 and gradient 0.
    """
    samples, classes, positions = predictions.shape
    with_gradient = gradient.size != 0
    off_target = smoothing / classes
    on_target = 1.0 - smoothing + off_target
    values, totals, log_z = blocks.scratch(predictions)
    block = blocks.block_samples(classes, positions)
    for first in range(0, samples, block):
        stop = min(first + block, samples)
        blocks.fill(predictions, first, stop, from_logits, eps, values, totals, log_z)
        for n in range(first, stop):
            for s in range(positions):
                element = n * positions + s
                at = ((n - first) * classes) * positions + s  # values[at + c * positions]
                label = labels[n, s]
                if label < 0 or label >= classes:
                    losses[element] = 0.0
                    if with_gradient:
                        for c in range(classes):
                            gradient[(n * classes + c) * positions + s] = 0.0
                    continue
                loss = 0.0
                if from_logits:
                    z = log_z[(n - first) * positions + s]
                    total = totals[(n - first) * positions + s]
                    for c in range(classes):
                        y = on_target if c == label else off_target
                        loss += y * (z - predictions[n, c, s])
                        if with_gradient:
                            q = values[at + c * positions] / total
                            gradient[(n * classes + c) * positions + s] = scale_at(
                                scale, element
                            ) * (q - y)
                else:
                    for c in range(classes):
                        y = on_target if c == label else off_target
                        if y != 0.0:
                            loss -= y * values[at + c * positions]
                        if with_gradient:
                            q = clip(predictions[n, c, s], eps, 1.0 - eps)
                            gradient[(n * classes + c) * positions + s] = scale_at(
                                scale, element
                            ) * (-y / q)
                losses[element] = loss


@kernel
def categorical_focal(
    predictions, targets, scale, losses, gradient, from_logits, gamma, alpha, eps
):
    r"""The loss and gradient that record ``CATEGORICAL_FOCAL`` (service/losses/categorical.py)
    states (:math:`g_c = y_c\, q_c f'(q_c)` with :math:`f(q) = (1 - q)^\gamma
    \log q`).

    For logits, :math:`1 - q_c` of the largest class is summed from the other classes (no
    cancellation as :math:`q_c \to 1`), and :math:`\log q_c / (1 - q_c)` is evaluated there as
    :math:`-\operatorname{log1p}(r)(1 + r)/r` (r = the others' share; -1 in the limit r = 0), so
    one power per class suffices and nothing overflows for :math:`\gamma < 1`. For
    :math:`\gamma = 2` (the default) the gradient's term needs no division at all:
    :math:`(1 - q)^2 (1 - 2 q \log q / (1 - q)) = (1 - q)(1 - q - 2 q \log q)`.
    """
    samples, classes, positions = predictions.shape
    with_gradient = gradient.size != 0
    values, totals, log_z = blocks.scratch(predictions)
    terms = np.empty(classes)
    block = blocks.block_samples(classes, positions)
    for first in range(0, samples, block):
        stop = min(first + block, samples)
        blocks.fill(predictions, first, stop, from_logits, eps, values, totals, log_z)
        for n in range(first, stop):
            for s in range(positions):
                element = n * positions + s
                at = ((n - first) * classes) * positions + s  # values[at + c * positions]
                loss = 0.0
                if from_logits:
                    # the first largest logit, without a branch per class (random logits made
                    # ~2 mispredicted jumps per position)
                    peak = predictions[n, 0, s]
                    for c in range(1, classes):
                        peak = max(peak, predictions[n, c, s])
                    top = classes
                    for c in range(classes - 1, -1, -1):
                        top = c if predictions[n, c, s] == peak else top
                    rest = 0.0  # the other classes' sum, added up alone: total - 1 would cancel
                    for c in range(classes):
                        rest += 0.0 if c == top else values[at + c * positions]
                    total = 1.0 + rest  # e^0 for the top class, exactly
                    inverse = 1.0 / total  # one division per position, not one per class
                    log_total = vmath.log1p(rest)
                    weighted_sum = 0.0
                    if gamma == 2.0:
                        # (1 - q)^2 (1 - 2 q log q / (1 - q)) = (1 - q) (1 - q - 2 q log q): no
                        # division, and a sum of two non-negative terms
                        for c in range(classes):
                            y = targets[n, c, s]
                            log_q = predictions[n, c, s] - peak - log_total
                            q = values[at + c * positions] * inverse
                            complement = rest * inverse if c == top else 1.0 - q
                            loss -= alpha * y * (complement * complement) * log_q
                            terms[c] = y * complement * (complement - 2.0 * q * log_q)
                            weighted_sum += terms[c]
                    else:
                        for c in range(classes):
                            y = targets[n, c, s]
                            log_q = predictions[n, c, s] - peak - log_total
                            q = values[at + c * positions] * inverse
                            if c == top:
                                complement = rest * inverse
                                ratio = -log_total * total / rest if rest > 0.0 else -1.0
                            else:
                                complement = 1.0 - q
                                ratio = log_q / complement
                            focus = complement**gamma
                            loss -= alpha * y * focus * log_q
                            terms[c] = y * focus * (1.0 - gamma * q * ratio)
                            weighted_sum += terms[c]
                    if with_gradient:
                        for c in range(classes):
                            q = values[at + c * positions] * inverse
                            gradient[(n * classes + c) * positions + s] = (
                                scale_at(scale, element) * -alpha * (terms[c] - q * weighted_sum)
                            )
                else:
                    for c in range(classes):
                        q = clip(predictions[n, c, s], eps, 1.0 - eps)
                        y = targets[n, c, s]
                        log_q = values[at + c * positions]
                        complement = 1.0 - q
                        focus = complement * complement if gamma == 2.0 else complement**gamma
                        loss -= alpha * y * focus * log_q
                        if with_gradient:
                            term = focus * (1.0 - gamma * q * log_q / complement)
                            gradient[(n * classes + c) * positions + s] = (
                                scale_at(scale, element) * -alpha * y * term / q
                            )
                losses[element] = loss


@kernel
def categorical_hinge(predictions, targets, scale, losses, gradient):
    r"""The loss and gradient of record ``CATEGORICAL_HINGE`` (service/losses/categorical.py):
    Keras's categorical hinge on raw scores; the first maximiser :math:`c^*` of :math:`(1 - y_c)
    p_c` takes the gradient."""
    samples, classes, positions = predictions.shape
    with_gradient = gradient.size != 0
    for n in range(samples):
        for s in range(positions):
            element = n * positions + s
            positive = 0.0
            top = 0
            negative = (1.0 - targets[n, 0, s]) * predictions[n, 0, s]
            for c in range(classes):
                positive += targets[n, c, s] * predictions[n, c, s]
                candidate = (1.0 - targets[n, c, s]) * predictions[n, c, s]
                if candidate > negative:
                    negative = candidate
                    top = c
            h = negative - positive + 1.0
            active = h > 0.0
            losses[element] = h if active else 0.0
            if with_gradient:
                for c in range(classes):
                    slope = 0.0
                    if active:
                        slope = -targets[n, c, s]
                        if c == top:
                            slope += 1.0 - targets[n, c, s]
                    gradient[(n * classes + c) * positions + s] = scale_at(scale, element) * slope


@kernel
def kl_divergence(predictions, targets, scale, losses, gradient, from_logits, eps):
    r"""The loss and gradient of record ``KL_DIVERGENCE`` (service/losses/categorical.py), with
    :math:`0 \log 0 = 0`."""
    samples, classes, positions = predictions.shape
    with_gradient = gradient.size != 0
    values, totals, log_z = blocks.scratch(predictions)
    log_targets = np.empty_like(values)
    block = blocks.block_samples(classes, positions)
    for first in range(0, samples, block):
        stop = min(first + block, samples)
        blocks.fill(predictions, first, stop, from_logits, eps, values, totals, log_z)
        blocks.log_positive(targets, first, stop, log_targets)
        for n in range(first, stop):
            for s in range(positions):
                element = n * positions + s
                at = ((n - first) * classes) * positions + s  # values[at + c * positions]
                z = log_z[(n - first) * positions + s]
                loss = 0.0
                target_sum = 0.0
                for c in range(classes):
                    y = targets[n, c, s]
                    target_sum += y
                    if from_logits:
                        log_q = predictions[n, c, s] - z
                    else:
                        log_q = values[at + c * positions]
                    if y > 0.0:
                        loss += y * (log_targets[at + c * positions] - log_q)
                losses[element] = loss
                if with_gradient:
                    total = totals[(n - first) * positions + s]
                    for c in range(classes):
                        y = targets[n, c, s]
                        if from_logits:
                            slope = values[at + c * positions] / total * target_sum - y
                        else:
                            slope = -y / clip(predictions[n, c, s], eps, 1.0 - eps)
                        gradient[(n * classes + c) * positions + s] = (
                            scale_at(scale, element) * slope
                        )


@kernel
def multi_margin(predictions, labels, scale, losses, gradient, margin, power):
    r"""The loss and gradient of record ``MULTI_MARGIN`` (service/losses/categorical.py): PyTorch's
    MultiMarginLoss, P in {1, 2}, 0 at the kink :math:`h_j = 0`. ``labels`` is ``[N, 1]`` and
    ``predictions`` ``[N, C, 1]`` (one element per sample)."""
    samples, classes, _ = predictions.shape
    with_gradient = gradient.size != 0
    for n in range(samples):
        label = labels[n, 0]
        target_score = predictions[n, label, 0]
        loss = 0.0
        if with_gradient:
            for c in range(classes):
                gradient[n * classes + c] = 0.0
        for j in range(classes):
            if j == label:
                continue
            h = margin - target_score + predictions[n, j, 0]
            if h > 0.0:
                if power == 2:
                    loss += h * h
                    slope = 2.0 * h / classes
                else:
                    loss += h
                    slope = 1.0 / classes
                if with_gradient:
                    gradient[n * classes + j] += scale_at(scale, n) * slope
                    gradient[n * classes + label] -= scale_at(scale, n) * slope
        losses[n] = loss / classes
