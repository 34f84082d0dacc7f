r"""Binary and multi-label kernels: elementwise over predictions and targets of one shape.

Same signature as :mod:`service.kernels.regression`::

    kernel(predictions, targets, scale, losses, gradient, *params) -> None

With ``from_logits`` the prediction is a logit x and the gradient is taken with respect to x;
otherwise it is a probability, clipped to :math:`p_c = \operatorname{clip}(p, \epsilon,
1 - \epsilon)` before any log, and the derivative is evaluated at the clipped value.
Logit forms use :math:`\log\sigma(x) = -\operatorname{softplus}(-x)` and
:math:`\log(1 - \sigma(x)) = -\operatorname{softplus}(x)`, finite for any finite x.
"""

import math

from service.kernels.jit import kernel
from service.kernels.stable import clip, logistic


@kernel
def binary_cross_entropy(
    predictions, targets, scale, losses, gradient, from_logits, smoothing, eps, pos_weight
):
    r"""The loss and gradient that record ``BINARY_CROSS_ENTROPY`` (service/losses/binary.py)
    states.

    Probabilities are clipped to :math:`[\epsilon, 1 - \epsilon]` before the logs. Logits go
    through :func:`~service.kernels.stable.logistic` (softplus and sigmoid of both signs from
    one ``exp`` and one ``log1p``), with :math:`w` = ``pos_weight[i % len(pos_weight)]`` (one
    per entry of the last axis, or one for all).
    """
    with_gradient = gradient.size != 0
    period = pos_weight.size
    for i in range(predictions.size):
        y = targets[i] * (1.0 - smoothing) + 0.5 * smoothing
        if from_logits:
            w = pos_weight[i % period] if period > 1 else pos_weight[0]
            softplus_pos, softplus_neg, sigmoid_pos, sigmoid_neg = logistic(predictions[i])
            losses[i] = w * y * softplus_neg + (1.0 - y) * softplus_pos
            slope = -w * y * sigmoid_neg + (1.0 - y) * sigmoid_pos
        else:
            p = clip(predictions[i], eps, 1.0 - eps)
            losses[i] = -(y * math.log(p) + (1.0 - y) * math.log(1.0 - p))
            slope = -y / p + (1.0 - y) / (1.0 - p)
        if with_gradient:
            gradient[i] = scale[i] * slope


@kernel
def binary_focal(
    predictions, targets, scale, losses, gradient, from_logits, gamma, use_alpha, alpha, eps
):
    r"""The loss and gradient that record ``BINARY_FOCAL`` (service/losses/binary.py) states.

    With :math:`u = 1 - p_t` and :math:`b` the binary cross-entropy, the derivative's first term
    :math:`\gamma u^{\gamma - 1} u' b` is computed as :math:`\gamma u^\gamma (u'/u) b` and taken
    as 0 where :math:`\gamma = 0` or :math:`u = 0` (its limit), so :math:`\gamma < 1` stays
    finite at saturated logits; for logits :math:`u' = (1 - 2y)\sigma(x)\sigma(-x)`.
    """
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        y = targets[i]
        if from_logits:
            softplus_pos, softplus_neg, s_pos, s_neg = logistic(predictions[i])
            u = y * s_neg + (1.0 - y) * s_pos
            bce = y * softplus_neg + (1.0 - y) * softplus_pos
            du = (1.0 - 2.0 * y) * s_pos * s_neg
            dbce = -y * s_neg + (1.0 - y) * s_pos
        else:
            p = clip(predictions[i], eps, 1.0 - eps)
            u = y * (1.0 - p) + (1.0 - y) * p
            bce = -(y * math.log(p) + (1.0 - y) * math.log(1.0 - p))
            du = 1.0 - 2.0 * y
            dbce = -y / p + (1.0 - y) / (1.0 - p)
        weight = alpha * y + (1.0 - alpha) * (1.0 - y) if use_alpha else 1.0
        modulating = u * u if gamma == 2.0 else u**gamma
        losses[i] = weight * modulating * bce
        if with_gradient:
            slope = modulating * dbce
            if gamma != 0.0 and u > 0.0:
                # gamma u^(gamma-1) du = gamma u^gamma (du / u): one power, and no overflow of
                # u^(gamma-1) for gamma < 1 where u underflows.
                slope += gamma * modulating * (du / u) * bce
            gradient[i] = scale[i] * weight * slope


@kernel
def hinge(predictions, targets, scale, losses, gradient, margin):
    r"""The loss and gradient of record ``HINGE`` (service/losses/binary.py); t = +1 for y > 0 and
    -1 otherwise, so {0, 1} and {-1, 1} targets both work; 0 at the kink."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        t = 1.0 if targets[i] > 0.0 else -1.0
        h = margin - t * predictions[i]
        if h > 0.0:
            losses[i] = h
            slope = -t
        else:
            losses[i] = 0.0
            slope = 0.0
        if with_gradient:
            gradient[i] = scale[i] * slope


@kernel
def squared_hinge(predictions, targets, scale, losses, gradient, margin):
    r"""The loss and gradient of record ``SQUARED_HINGE`` (service/losses/binary.py)."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        t = 1.0 if targets[i] > 0.0 else -1.0
        h = max(margin - t * predictions[i], 0.0)
        losses[i] = h * h
        if with_gradient:
            gradient[i] = scale[i] * -2.0 * t * h
