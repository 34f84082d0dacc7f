r"""Overlap kernels (Dice, Jaccard, Tversky): one element per (sample, class).

Arrays: ``predictions[N, C, S]`` and dense ``targets[N, C, S]`` (S = spatial positions);
``scale``/``losses`` are flat over the (N, C) grid; ``gradient`` is flat in the predictions'
layout. ``activation``: 0 = probabilities used as given, 1 = sigmoid, 2 = softmax over axis 1.

Per (n, c), over the positions: :math:`I = \sum q y`, :math:`P = \sum q` (:math:`\sum q^2` with
``squared``), :math:`P_1 = \sum q`, :math:`G = \sum y`. Each loss returns its value and the
partials :math:`\partial l/\partial I` and :math:`\partial l/\partial P`; then
:math:`\partial l/\partial q_s = l_I\, y_s + l_P\, \partial P/\partial q_s`, scaled per element,
and carried back through the activation (sigmoid: :math:`q(1 - q)`; softmax, per position:
:math:`q_c (g_c - \sum_k q_k g_k)`). Denominators below ``eps`` are replaced by ``eps``
(a constant, so its derivative is 0): an empty class is never 0/0.
"""

import math

import numpy as np

from service.kernels.jit import kernel, scale_at
from service.kernels.stable import sigmoid

NONE, SIGMOID, SOFTMAX = 0, 1, 2


@kernel
def _activate(predictions, activation):
    """q: the probabilities the sums are taken over (a new array unless used as given)."""
    if activation == NONE:
        return predictions
    samples, classes, positions = predictions.shape
    q = np.empty_like(predictions)
    for n in range(samples):
        for s in range(positions):
            if activation == SIGMOID:
                for c in range(classes):
                    q[n, c, s] = sigmoid(predictions[n, c, s])
            else:
                peak = predictions[n, 0, s]
                for c in range(1, classes):
                    peak = max(peak, predictions[n, c, s])
                total = 0.0
                for c in range(classes):
                    q[n, c, s] = math.exp(predictions[n, c, s] - peak)
                    total += q[n, c, s]
                for c in range(classes):
                    q[n, c, s] /= total
    return q


@kernel
def _sums(q, targets, n, c, squared):
    intersection = 0.0
    predicted = 0.0
    predicted_linear = 0.0
    truth = 0.0
    for s in range(q.shape[2]):
        intersection += q[n, c, s] * targets[n, c, s]
        predicted_linear += q[n, c, s]
        predicted += q[n, c, s] * q[n, c, s] if squared else q[n, c, s]
        truth += targets[n, c, s]
    return intersection, predicted, predicted_linear, truth


@kernel
def _backward(q, targets, slopes, activation, squared, gradient):
    """Fill ``gradient`` from ``slopes[n, c] = (scale * l_I, scale * l_P)``."""
    samples, classes, positions = q.shape
    local = np.empty(classes)
    for n in range(samples):
        for s in range(positions):
            for c in range(classes):
                d_predicted = 2.0 * q[n, c, s] if squared else 1.0
                local[c] = slopes[n, c, 0] * targets[n, c, s] + slopes[n, c, 1] * d_predicted
            if activation == SOFTMAX:
                inner = 0.0
                for c in range(classes):
                    inner += q[n, c, s] * local[c]
                for c in range(classes):
                    gradient[(n * classes + c) * positions + s] = q[n, c, s] * (local[c] - inner)
            else:
                for c in range(classes):
                    g = local[c]
                    if activation == SIGMOID:
                        g *= q[n, c, s] * (1.0 - q[n, c, s])
                    gradient[(n * classes + c) * positions + s] = g


@kernel
def dice(predictions, targets, scale, losses, gradient, activation, smooth, squared, eps):
    r"""The loss and gradient of record ``DICE`` (service/losses/overlap.py). In the notation of the
    module, :math:`l_I = -2/D`, :math:`l_P = (2I + s)/D^2`, both 0 when D is clamped at
    :math:`\epsilon`."""
    samples, classes, _ = predictions.shape
    q = _activate(predictions, activation)
    slopes = np.zeros((samples, classes, 2))
    for n in range(samples):
        for c in range(classes):
            intersection, predicted, _, truth = _sums(q, targets, n, c, squared)
            raw = predicted + truth + smooth
            denominator = max(raw, eps)
            losses[n * classes + c] = 1.0 - (2.0 * intersection + smooth) / denominator
            e = n * classes + c
            if gradient.size != 0:
                slopes[n, c, 0] = scale_at(scale, e) * -2.0 / denominator
                if raw > eps:
                    slopes[n, c, 1] = scale_at(scale, e) * (2.0 * intersection + smooth) / raw**2
    if gradient.size != 0:
        _backward(q, targets, slopes, activation, squared, gradient)


@kernel
def jaccard(predictions, targets, scale, losses, gradient, activation, smooth, squared, eps):
    r"""The loss and gradient of record ``JACCARD`` (service/losses/overlap.py). :math:`l_I = -(J +
    I + s)/J^2`, :math:`l_P = (I + s)/J^2`; clamped at :math:`\epsilon`: :math:`l_I =
    -1/\epsilon`, :math:`l_P = 0`."""
    samples, classes, _ = predictions.shape
    q = _activate(predictions, activation)
    slopes = np.zeros((samples, classes, 2))
    for n in range(samples):
        for c in range(classes):
            intersection, predicted, _, truth = _sums(q, targets, n, c, squared)
            raw = predicted + truth - intersection + smooth
            e = n * classes + c
            if raw > eps:
                losses[e] = 1.0 - (intersection + smooth) / raw
                if gradient.size != 0:
                    slopes[n, c, 0] = scale_at(scale, e) * -(raw + intersection + smooth) / raw**2
                    slopes[n, c, 1] = scale_at(scale, e) * (intersection + smooth) / raw**2
            else:
                losses[e] = 1.0 - (intersection + smooth) / eps
                if gradient.size != 0:
                    slopes[n, c, 0] = scale_at(scale, e) * -1.0 / eps
    if gradient.size != 0:
        _backward(q, targets, slopes, activation, squared, gradient)


@kernel
def tversky(
    predictions, targets, scale, losses, gradient, activation, smooth, alpha, beta, gamma, eps
):
    r"""The loss and gradient of record ``TVERSKY`` (service/losses/overlap.py). With :math:`P_1 =
    \sum q`, :math:`D = (1 - \alpha - \beta) I + \alpha P_1 + \beta G + s`: :math:`T_I = (D - (I
    + s)(1 - \alpha - \beta))/D^2`, :math:`T_P = -\alpha (I + s)/D^2`, :math:`l_T = -\gamma (1 -
    T)^{\gamma - 1}`; at T = 1 that is -1 for :math:`\gamma = 1`, 0 for :math:`\gamma > 1`, and
    taken as 0 for :math:`\gamma < 1` (unbounded there)."""
    samples, classes, _ = predictions.shape
    q = _activate(predictions, activation)
    slopes = np.zeros((samples, classes, 2))
    for n in range(samples):
        for c in range(classes):
            intersection, _, predicted, truth = _sums(q, targets, n, c, False)
            raw = (1.0 - alpha - beta) * intersection + alpha * predicted + beta * truth + smooth
            denominator = max(raw, eps)
            index = (intersection + smooth) / denominator
            miss = 1.0 - index
            e = n * classes + c
            losses[e] = max(miss, 0.0) ** gamma
            # At T = 1 the slope -gamma (1 - T)^(gamma - 1) is -1 for gamma = 1 (0^0 = 1), 0 for
            # gamma > 1, and unbounded for gamma < 1, where 0 is taken (documented).
            if gradient.size != 0 and (miss > 0.0 or gamma == 1.0):
                slope_t = -gamma * miss ** (gamma - 1.0)
                if raw > eps:
                    d_i = (raw - (intersection + smooth) * (1.0 - alpha - beta)) / raw**2
                    d_p = -alpha * (intersection + smooth) / raw**2
                else:
                    d_i = 1.0 / eps
                    d_p = 0.0
                slopes[n, c, 0] = scale_at(scale, e) * slope_t * d_i
                slopes[n, c, 1] = scale_at(scale, e) * slope_t * d_p
    if gradient.size != 0:
        _backward(q, targets, slopes, activation, False, gradient)
