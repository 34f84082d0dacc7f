"""Vectorised NumPy versions of every loss: element losses and the mean cost's gradient.

The baseline the kernels are measured against: what a careful user would write with NumPy
(whole-array operations, stable forms), computing the same outputs as a kernel call: element
losses and ``scale * d loss / d prediction`` for the mean over all elements.
Each function takes ``(p, y)`` shaped as the benchmark builds them and returns
``(losses, gradient)``.
"""

from __future__ import annotations

import numpy as np


def _softplus(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def mse(p, y):
    d = p - y
    return d * d, (2.0 / d.size) * d


def mae(p, y):
    d = p - y
    return np.abs(d), np.sign(d) / d.size


def huber(p, y, delta=1.0):
    d = p - y
    a = np.abs(d)
    inside = a <= delta
    return np.where(inside, 0.5 * d * d, delta * (a - 0.5 * delta)), np.where(
        inside, d, delta * np.sign(d)
    ) / d.size


def smooth_l1(p, y, beta=1.0):
    d = p - y
    a = np.abs(d)
    inside = a < beta
    return np.where(inside, 0.5 * d * d / beta, a - 0.5 * beta), np.where(
        inside, d / beta, np.sign(d)
    ) / d.size


def log_cosh(p, y):
    d = p - y
    a = np.abs(d)
    return a + np.log1p(np.exp(-2.0 * a)) - np.log(2.0), np.tanh(d) / d.size


def msle(p, y):
    r = np.log1p(p) - np.log1p(y)
    return r * r, 2.0 * r / (1.0 + p) / p.size


def mape(p, y, eps=1e-7):
    denominator = np.maximum(np.abs(y), eps)
    d = p - y
    return 100.0 * np.abs(d) / denominator, 100.0 * np.sign(d) / denominator / d.size


def quantile(p, y, q=0.5):
    r = y - p
    return np.maximum(q * r, (q - 1.0) * r), np.where(
        r > 0, -q, np.where(r < 0, 1.0 - q, 0.0)
    ) / r.size


def poisson_nll(p, y):
    rate = np.exp(p)
    return rate - y * p, (rate - y) / p.size


def binary_cross_entropy(x, y):
    """From logits."""
    return y * _softplus(-x) + (1.0 - y) * _softplus(x), (_sigmoid(x) - y) / x.size


def binary_focal(x, y, gamma=2.0):
    s = _sigmoid(x)
    u = y * (1.0 - s) + (1.0 - y) * s
    bce = y * _softplus(-x) + (1.0 - y) * _softplus(x)
    du = (1.0 - 2.0 * y) * s * (1.0 - s)
    grad = gamma * u ** (gamma - 1.0) * du * bce + u**gamma * (s - y)
    return u**gamma * bce, grad / x.size


def hinge(p, y, margin=1.0):
    t = np.where(y > 0, 1.0, -1.0)
    h = margin - t * p
    return np.maximum(h, 0.0), np.where(h > 0, -t, 0.0) / p.size


def squared_hinge(p, y, margin=1.0):
    t = np.where(y > 0, 1.0, -1.0)
    h = np.maximum(margin - t * p, 0.0)
    return h * h, -2.0 * t * h / p.size


def _log_softmax(x):
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def categorical_cross_entropy(x, y):
    """From logits, one-hot targets (N, C)."""
    log_q = _log_softmax(x)
    return -(y * log_q).sum(axis=1), (np.exp(log_q) * y.sum(axis=1, keepdims=True) - y) / x.shape[0]


def sparse_categorical_cross_entropy(x, labels):
    log_q = _log_softmax(x)
    rows = np.arange(x.shape[0])
    gradient = np.exp(log_q)
    gradient[rows, labels] -= 1.0
    return -log_q[rows, labels], gradient / x.shape[0]


def categorical_focal(x, y, gamma=2.0):
    log_q = _log_softmax(x)
    q = np.exp(log_q)
    complement = 1.0 - q
    losses = -(y * complement**gamma * log_q).sum(axis=1)
    terms = y * (complement**gamma - gamma * complement ** (gamma - 1.0) * q * log_q)
    gradient = -(terms - q * terms.sum(axis=1, keepdims=True))
    return losses, gradient / x.shape[0]


def categorical_hinge(p, y):
    positive = (y * p).sum(axis=1)
    scores = (1.0 - y) * p
    top = scores.argmax(axis=1)
    h = scores[np.arange(p.shape[0]), top] - positive + 1.0
    active = (h > 0)[:, None]
    gradient = -y.copy()
    gradient[np.arange(p.shape[0]), top] += 1.0 - y[np.arange(p.shape[0]), top]
    return np.maximum(h, 0.0), np.where(active, gradient, 0.0) / p.shape[0]


def multi_margin(x, labels, margin=1.0):
    rows = np.arange(x.shape[0])
    classes = x.shape[1]
    h = margin - x[rows, labels][:, None] + x
    h[rows, labels] = 0.0
    active = h > 0
    losses = np.where(active, h, 0.0).sum(axis=1) / classes
    gradient = active / classes
    gradient[rows, labels] = -gradient.sum(axis=1)
    return losses, gradient / x.shape[0]


def kl_divergence(x, y):
    log_q = _log_softmax(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        y_log_y = np.where(y > 0, y * np.log(y), 0.0)
    return (y_log_y - y * log_q).sum(axis=1), (
        np.exp(log_q) * y.sum(axis=1, keepdims=True) - y
    ) / x.shape[0]
