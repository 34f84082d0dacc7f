r"""Elementwise regression kernels.

Signature of every kernel here::

    kernel(predictions, targets, scale, losses, gradient, *params) -> None

``predictions``, ``targets``, ``losses``: 1-D float64 of equal length n. ``scale`` and
``gradient``: length n, or length 0 to skip the gradient. The kernel writes
``losses[i]`` = :math:`l(p_i, y_i)` and ``gradient[i]`` = :math:`scale_i \, \partial l / \partial p_i`.
At a kink the derivative is 0.
"""

import math

from numba import njit

LOG2 = math.log(2.0)


@njit(cache=True, nogil=True)
def _sign(x):
    """sign(x) with sign(0) = 0: the derivative of |x| taken as 0 at the kink."""
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return 0.0


@njit(cache=True, nogil=True)
def mse(predictions, targets, scale, losses, gradient):
    r""":math:`l = d^2`, :math:`\partial l/\partial p = 2d`, with :math:`d = p - y`."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        losses[i] = d * d
        if with_gradient:
            gradient[i] = scale[i] * 2.0 * d


@njit(cache=True, nogil=True)
def mae(predictions, targets, scale, losses, gradient):
    r""":math:`l = |d|`, :math:`\partial l/\partial p = \operatorname{sign} d` (0 at 0)."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        losses[i] = abs(d)
        if with_gradient:
            gradient[i] = scale[i] * _sign(d)


@njit(cache=True, nogil=True)
def huber(predictions, targets, scale, losses, gradient, delta):
    r""":math:`l = d^2/2` if :math:`|d| \le \delta` else :math:`\delta(|d| - \delta/2)`.

    Derivative :math:`d` inside, :math:`\delta \operatorname{sign} d` outside (continuous).
    """
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        a = abs(d)
        if a <= delta:
            losses[i] = 0.5 * d * d
            slope = d
        else:
            losses[i] = delta * (a - 0.5 * delta)
            slope = delta * _sign(d)
        if with_gradient:
            gradient[i] = scale[i] * slope


@njit(cache=True, nogil=True)
def smooth_l1(predictions, targets, scale, losses, gradient, beta):
    r""":math:`l = d^2/(2\beta)` if :math:`|d| < \beta` else :math:`|d| - \beta/2`; β = 0 is |d|.

    Derivative :math:`d/\beta` inside, :math:`\operatorname{sign} d` outside.
    """
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        a = abs(d)
        if a < beta:  # never true for beta == 0, which leaves the pure L1 branch
            losses[i] = 0.5 * d * d / beta
            slope = d / beta
        else:
            losses[i] = a - 0.5 * beta
            slope = _sign(d)
        if with_gradient:
            gradient[i] = scale[i] * slope


@njit(cache=True, nogil=True)
def log_cosh(predictions, targets, scale, losses, gradient):
    r""":math:`l = \log\cosh d`, :math:`\partial l/\partial p = \tanh d`.

    Computed as :math:`|d| + \operatorname{softplus}(-2|d|) - \log 2`: ``cosh`` overflows for
    :math:`|d| > 710`, while this form is exact and finite for every finite d
    (``softplus(-2|d|) = log1p(exp(-2|d|))`` never overflows).
    """
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        a = abs(d)
        losses[i] = a + math.log1p(math.exp(-2.0 * a)) - LOG2
        if with_gradient:
            gradient[i] = scale[i] * math.tanh(d)


@njit(cache=True, nogil=True)
def msle(predictions, targets, scale, losses, gradient):
    r""":math:`l = (\log(1+p) - \log(1+y))^2`, :math:`\partial l/\partial p = 2(\log(1+p) - \log(1+y))/(1+p)`.

    Requires p, y > -1 (validated before the kernel runs).
    """
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        r = math.log1p(predictions[i]) - math.log1p(targets[i])
        losses[i] = r * r
        if with_gradient:
            gradient[i] = scale[i] * 2.0 * r / (1.0 + predictions[i])


@njit(cache=True, nogil=True)
def mape(predictions, targets, scale, losses, gradient, eps):
    r""":math:`l = 100 |y - p| / \max(|y|, \epsilon)`, derivative :math:`100 \operatorname{sign}(p - y) / \max(|y|, \epsilon)`."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        denominator = max(abs(targets[i]), eps)
        losses[i] = 100.0 * abs(d) / denominator
        if with_gradient:
            gradient[i] = scale[i] * 100.0 * _sign(d) / denominator


@njit(cache=True, nogil=True)
def quantile(predictions, targets, scale, losses, gradient, q):
    r"""Pinball loss, :math:`r = y - p`: :math:`l = \max(q r, (q - 1) r)`.

    Derivative in p: :math:`-q` when r > 0 (under-prediction), :math:`1 - q` when r < 0, 0 at r = 0.
    """
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        r = targets[i] - predictions[i]
        if r > 0.0:
            losses[i] = q * r
            slope = -q
        elif r < 0.0:
            losses[i] = (q - 1.0) * r
            slope = 1.0 - q
        else:
            losses[i] = 0.0
            slope = 0.0
        if with_gradient:
            gradient[i] = scale[i] * slope


@njit(cache=True, nogil=True)
def poisson_nll(predictions, targets, scale, losses, gradient, log_input, eps):
    r"""Poisson negative log-likelihood without the constant :math:`\log y!` (PyTorch, full=False).

    ``log_input``: :math:`l = e^p - y p`, derivative :math:`e^p - y`.
    Otherwise: :math:`l = p - y \log(p + \epsilon)`, derivative :math:`1 - y / (p + \epsilon)`.
    """
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        p = predictions[i]
        y = targets[i]
        if log_input:
            rate = math.exp(p)
            losses[i] = rate - y * p
            slope = rate - y
        else:
            losses[i] = p - y * math.log(p + eps)
            slope = 1.0 - y / (p + eps)
        if with_gradient:
            gradient[i] = scale[i] * slope
