r"""Binary and multi-label kernels: elementwise over predictions and targets of one shape.

Same signature as :mod:`service.kernels.regression`::

    kernel(predictions, targets, scale, losses, gradient, *params) -> None

With ``from_logits`` the prediction is a logit x and the gradient is taken with respect to x;
otherwise it is a probability, clipped to :math:`p_c = \operatorname{clip}(p, \epsilon,
1 - \epsilon)` before any log, and the derivative is evaluated at the clipped value.
Logit forms use :math:`\log\sigma(x) = -\operatorname{softplus}(-x)` and
:math:`\log(1 - \sigma(x)) = -\operatorname{softplus}(x)`, finite for any finite x.
"""

from service.kernels import vmath
from service.kernels.jit import element, kernel, scale_at
from service.kernels.stable import clip, logistic


@element
def _smoothed(target, smoothing):
    return target * (1.0 - smoothing) + 0.5 * smoothing


@element
def _bce_logit(x, y, w):
    """(loss, d loss / dx) of one logit x, smoothed target y and positive weight w."""
    softplus_pos, softplus_neg, sigmoid_pos, sigmoid_neg = logistic(x)
    return (
        w * y * softplus_neg + (1.0 - y) * softplus_pos,
        -w * y * sigmoid_neg + (1.0 - y) * sigmoid_pos,
    )


@element
def _bce_probability(p, y, eps):
    """(loss, d loss / dp) of one probability p (clipped) and smoothed target y."""
    p = clip(p, eps, 1.0 - eps)
    return -(y * vmath.log(p) + (1.0 - y) * vmath.log(1.0 - p)), -y / p + (1.0 - y) / (1.0 - p)


@kernel
def binary_cross_entropy(
    predictions, targets, scale, losses, gradient, from_logits, smoothing, eps, pos_weight
):
    r"""The loss and gradient that record ``BINARY_CROSS_ENTROPY`` (service/losses/binary.py)
    states.

    Probabilities are clipped to :math:`[\epsilon, 1 - \epsilon]` before the logs. Logits go
    through :func:`~service.kernels.stable.logistic` (softplus and sigmoid of both signs from
    one ``exp`` and one ``log1p``), with :math:`w` = ``pos_weight[i % len(pos_weight)]`` (one
    per entry of the last axis, or one for all). Each case has its own loop, free of branches
    and of the modulo, so it vectorises.
    """
    with_gradient = gradient.size != 0
    n = predictions.size
    if not from_logits:
        for i in range(n):
            loss, slope = _bce_probability(predictions[i], _smoothed(targets[i], smoothing), eps)
            losses[i] = loss
            if with_gradient:
                gradient[i] = scale_at(scale, i) * slope
        return
    period = pos_weight.size
    if period == 1:
        w = pos_weight[0]
        for i in range(n):
            loss, slope = _bce_logit(predictions[i], _smoothed(targets[i], smoothing), w)
            losses[i] = loss
            if with_gradient:
                gradient[i] = scale_at(scale, i) * slope
        return
    for start in range(0, n, period):  # n is a whole number of last-axis rows
        for j in range(period):
            i = start + j
            loss, slope = _bce_logit(
                predictions[i], _smoothed(targets[i], smoothing), pos_weight[j]
            )
            losses[i] = loss
            if with_gradient:
                gradient[i] = scale_at(scale, i) * slope


@element
def _focal_parts_logit(x, y):
    """(u, bce, du, dbce) for a logit: u = 1 - p_t, bce, and their derivatives in x."""
    softplus_pos, softplus_neg, s_pos, s_neg = logistic(x)
    return (
        y * s_neg + (1.0 - y) * s_pos,
        y * softplus_neg + (1.0 - y) * softplus_pos,
        (1.0 - 2.0 * y) * s_pos * s_neg,
        -y * s_neg + (1.0 - y) * s_pos,
    )


@element
def _focal_parts_probability(p, y, eps):
    """(u, bce, du, dbce) for a probability (clipped), derivatives in p."""
    p = clip(p, eps, 1.0 - eps)
    return (
        y * (1.0 - p) + (1.0 - y) * p,
        -(y * vmath.log(p) + (1.0 - y) * vmath.log(1.0 - p)),
        1.0 - 2.0 * y,
        -y / p + (1.0 - y) / (1.0 - p),
    )


@element
def _focal_element(u, bce, du, dbce, y, gamma, use_alpha, alpha, modulating):
    """(loss, slope) from the parts and modulating = u**gamma."""
    weight = alpha * y + (1.0 - alpha) * (1.0 - y) if use_alpha else 1.0
    # gamma u^(gamma-1) du = gamma u^gamma (du / u): one power, and no overflow of u^(gamma-1)
    # for gamma < 1 where u underflows; 0 (its limit) where gamma = 0 or u = 0. A select.
    first = gamma * modulating * (du / u) * bce if (gamma != 0.0) & (u > 0.0) else 0.0
    return weight * modulating * bce, weight * (modulating * dbce + first)


@element
def _focal_parts(prediction, y, from_logits, eps):
    if from_logits:
        return _focal_parts_logit(prediction, y)
    return _focal_parts_probability(prediction, y, eps)


@element
def _focal_store(losses, gradient, scale, i, parts, y, gamma, use_alpha, alpha, modulating):
    """Write element i's loss (and slope, when the gradient is wanted) from its parts."""
    u, bce, du, dbce = parts
    loss, slope = _focal_element(u, bce, du, dbce, y, gamma, use_alpha, alpha, modulating)
    losses[i] = loss
    if gradient.size != 0:
        gradient[i] = scale_at(scale, i) * slope


@kernel
def binary_focal(
    predictions, targets, scale, losses, gradient, from_logits, gamma, use_alpha, alpha, eps
):
    r"""The loss and gradient that record ``BINARY_FOCAL`` (service/losses/binary.py) states.

    With :math:`u = 1 - p_t` and :math:`b` the binary cross-entropy, the derivative's first term
    :math:`\gamma u^{\gamma - 1} u' b` is computed as :math:`\gamma u^\gamma (u'/u) b` and taken
    as 0 where :math:`\gamma = 0` or :math:`u = 0` (its limit), so :math:`\gamma < 1` stays
    finite at saturated logits; for logits :math:`u' = (1 - 2y)\sigma(x)\sigma(-x)`. The
    default :math:`\gamma = 2` is :math:`u^2`, in a loop of its own: a loop with a ``pow`` call
    in it never vectorises, and LLVM left the choice inside one loop (18 ms against 5.7 ms at
    1e6 entries, one thread).
    """
    if gamma == 2.0:
        for i in range(predictions.size):
            y = targets[i]
            parts = _focal_parts(predictions[i], y, from_logits, eps)
            u = parts[0]
            _focal_store(losses, gradient, scale, i, parts, y, gamma, use_alpha, alpha, u * u)
    else:
        for i in range(predictions.size):
            y = targets[i]
            parts = _focal_parts(predictions[i], y, from_logits, eps)
            u = parts[0]
            _focal_store(losses, gradient, scale, i, parts, y, gamma, use_alpha, alpha, u**gamma)


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
            gradient[i] = scale_at(scale, i) * slope


@kernel
def squared_hinge(predictions, targets, scale, losses, gradient, margin):
    r"""The loss and gradient of record ``SQUARED_HINGE`` (service/losses/binary.py)."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        t = 1.0 if targets[i] > 0.0 else -1.0
        h = max(margin - t * predictions[i], 0.0)
        losses[i] = h * h
        if with_gradient:
            gradient[i] = scale_at(scale, i) * -2.0 * t * h
