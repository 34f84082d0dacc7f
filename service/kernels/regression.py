r"""Elementwise regression kernels.

Signature of every kernel here::

    kernel(predictions, targets, scale, losses, gradient, *params) -> None

``predictions``, ``targets``, ``losses``: 1-D float64 of equal length n. ``scale`` and
``gradient``: length n, or length 0 to skip the gradient. The kernel writes
``losses[i]`` = :math:`l(p_i, y_i)` and ``gradient[i]`` = :math:`scale_i \, \partial l / \partial p_i`.
At a kink the derivative is 0.
"""

from service.kernels import vmath
from service.kernels.jit import element, kernel, scale_at
from service.kernels.stable import sign

#: The largest finite float64.
MAX_FLOAT = 1.7976931348623157e308


@kernel
def mse(predictions, targets, scale, losses, gradient):
    r"""The loss and gradient of record ``MSE`` (service/losses/regression.py)."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        losses[i] = d * d
        if with_gradient:
            gradient[i] = scale_at(scale, i) * 2.0 * d


@kernel
def mae(predictions, targets, scale, losses, gradient):
    r"""The loss and gradient of record ``MAE`` (service/losses/regression.py); 0 at the kink."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        losses[i] = abs(d)
        if with_gradient:
            gradient[i] = scale_at(scale, i) * sign(d)


@kernel
def huber(predictions, targets, scale, losses, gradient, delta):
    r"""The loss and gradient of record ``HUBER`` (service/losses/regression.py); the derivative is
    continuous."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        a = abs(d)
        if a <= delta:
            losses[i] = 0.5 * d * d
            slope = d
        else:
            losses[i] = delta * (a - 0.5 * delta)
            slope = delta * sign(d)
        if with_gradient:
            gradient[i] = scale_at(scale, i) * slope


@kernel
def smooth_l1(predictions, targets, scale, losses, gradient, beta):
    r"""The loss and gradient of record ``SMOOTH_L1`` (service/losses/regression.py); beta = 0 is
    |d|."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        a = abs(d)
        if a < beta:  # never true for beta == 0, which leaves the pure L1 branch
            losses[i] = 0.5 * d * d / beta
            slope = d / beta
        else:
            losses[i] = a - 0.5 * beta
            slope = sign(d)
        if with_gradient:
            gradient[i] = scale_at(scale, i) * slope


@kernel
def log_cosh(predictions, targets, scale, losses, gradient):
    r"""The loss and gradient of record ``LOG_COSH`` (service/losses/regression.py).

    With :math:`e = \operatorname{expm1}(-2|d|) \in (-1, 0]`: :math:`\log\cosh d = |d| + \log(1
    + e^{-2|d|}) - \log 2 = |d| + \operatorname{log1p}(e/2)` and :math:`\tanh |d| = -e / (2 +
    e)`. ``cosh`` overflows for :math:`|d| > 710`; this form is finite for every finite d,
    accurate near 0 (expm1), and costs one expm1 and one log1p, both on bounded ranges
    (``vmath.expm1_moderate``, and ``log1p_half`` for e in [-1, 0]); for |d| > 18.5, where e is
    taken at |d| = 18.5, :math:`e^{-2|d|} < 8.5 \cdot 10^{-17}` is below the loss's last bit (it
    is over 17) and moves tanh by at most an ulp; past 19.1, where tanh rounds to 1, it is 1.
    """
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        a = abs(d)
        e = vmath.expm1_moderate(-2.0 * a)
        losses[i] = a + vmath.log1p_half(e)
        if with_gradient:
            tanh = -e / (2.0 + e) if a < 19.1 else 1.0
            gradient[i] = scale_at(scale, i) * sign(d) * tanh


@kernel
def msle(predictions, targets, scale, losses, gradient):
    r"""The loss and gradient of record ``MSLE`` (service/losses/regression.py); p, y > -1 (checked
    before the kernel runs).

    :math:`r = \operatorname{log1p}(p) - \operatorname{log1p}(y) = \log\frac{1 + p}{1 + y}` is
    computed as one ``log1p`` of a quotient: :math:`\operatorname{log1p}(\frac{p - y}{1 + y})`
    where :math:`1 + p \ge (1 + y)/2`, else :math:`-\operatorname{log1p}(\frac{y - p}{1 + p})`.
    Either quotient is at least -1/2, where ``log1p`` is well conditioned, so its one rounding
    moves r by about an ulp; and p close to y no longer cancels (the difference of two
    ``log1p`` lost up to 1e-10 relative there, measured against mpmath). Half the transcendental
    work, too. Where a quotient overflows (1 + y or 1 + p near 0 against a huge other value), the
    entries are done again as the difference of two ``log1p``, which is then far from
    cancelling."""
    with_gradient = gradient.size != 0
    overflowed = False
    for i in range(predictions.size):
        p = predictions[i]
        up, quotient = _msle_quotient(p, targets[i])
        overflowed |= quotient > MAX_FLOAT
        magnitude = vmath.log1p_finite(quotient)
        r = magnitude if up else -magnitude
        losses[i] = r * r
        if with_gradient:
            gradient[i] = scale_at(scale, i) * 2.0 * r / (1.0 + p)
    if overflowed:
        for i in range(predictions.size):
            p = predictions[i]
            y = targets[i]
            if _msle_quotient(p, y)[1] > MAX_FLOAT:
                r = vmath.log1p(p) - vmath.log1p(y)
                losses[i] = r * r
                if with_gradient:
                    gradient[i] = scale_at(scale, i) * 2.0 * r / (1.0 + p)


@element
def _msle_quotient(p, y):
    """(whether 1 + p >= (1 + y)/2, the quotient whose log1p is +-r): one division, of the
    chosen operands (choosing between two quotients computed both)."""
    up = 1.0 + p >= 0.5 * (1.0 + y)
    return up, (p - y if up else y - p) / (1.0 + y if up else 1.0 + p)


@kernel
def mape(predictions, targets, scale, losses, gradient, eps):
    r"""The loss and gradient of record ``MAPE`` (service/losses/regression.py)."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        d = predictions[i] - targets[i]
        denominator = max(abs(targets[i]), eps)
        losses[i] = 100.0 * abs(d) / denominator
        if with_gradient:
            gradient[i] = scale_at(scale, i) * 100.0 * sign(d) / denominator


@kernel
def quantile(predictions, targets, scale, losses, gradient, q):
    r"""The loss and gradient of record ``QUANTILE`` (service/losses/regression.py): the pinball
    loss, 0 at r = 0."""
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
            gradient[i] = scale_at(scale, i) * slope


@kernel
def poisson_nll(predictions, targets, scale, losses, gradient, log_input, eps):
    r"""The loss and gradient of record ``POISSON_NLL`` (service/losses/regression.py): without the
    constant :math:`\log y!` (PyTorch, ``full=False``)."""
    with_gradient = gradient.size != 0
    for i in range(predictions.size):
        p = predictions[i]
        y = targets[i]
        if log_input:
            rate = vmath.exp(p)
            losses[i] = rate - y * p
            slope = rate - y
        else:
            losses[i] = p - y * vmath.log(p + eps)
            slope = 1.0 - y / (p + eps)
        if with_gradient:
            gradient[i] = scale_at(scale, i) * slope
