r"""Numerically stable scalar building blocks shared by the kernels.

Every function here is finite for every finite input, including logits of :math:`\pm 10^4`.
"""

import math

import numpy as np

from service.kernels.jit import kernel


@kernel
def softplus(x):
    r""":math:`\log(1 + e^x)`, as :math:`\max(x, 0) + \operatorname{log1p}(e^{-|x|})`.

    The naive form overflows for x > 709; this one never does, and keeps full precision for
    very negative x (where it is :math:`\approx e^x`).
    """
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@kernel
def sigmoid(x):
    r""":math:`1 / (1 + e^{-x})`, evaluated through :math:`e^{-|x|}` so the exponential never
    overflows; :math:`\sigma(-x) = 1 - \sigma(x)` is exact in this form for large |x|."""
    z = math.exp(-abs(x))
    if x >= 0.0:
        return 1.0 / (1.0 + z)
    return z / (1.0 + z)


@kernel
def sign(x):
    """sign(x) with sign(0) = 0: the derivative of |x| taken as 0 at the kink."""
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return 0.0


@kernel
def clip(p, low, high):
    return min(max(p, low), high)


@kernel
def logistic(x):
    r"""``(softplus(x), softplus(-x), sigmoid(x), sigmoid(-x))`` from one ``exp`` and one ``log1p``.

    With :math:`z = e^{-|x|} \in (0, 1]`: :math:`\operatorname{softplus}(\pm x) =
    \max(\pm x, 0) + \operatorname{log1p}(z)`, and the two sigmoids are :math:`1/(1 + z)` and
    :math:`z/(1 + z)`, assigned by the sign of x. Exact complements, no overflow.
    """
    z = math.exp(-abs(x))
    log_term = math.log1p(z)
    big = 1.0 / (1.0 + z)
    small = z * big
    if x >= 0.0:
        return x + log_term, log_term, big, small
    return log_term, -x + log_term, small, big


@kernel
def _sigmoid_into(logits, out):
    for i in range(logits.size):
        out[i] = sigmoid(logits[i])


def sigmoids(logits: np.ndarray) -> np.ndarray:
    """:func:`sigmoid` of every entry (the metrics' ``from_logits``), in the logits' shape."""
    flat = np.ascontiguousarray(logits, dtype=np.float64).reshape(-1)
    out = np.empty_like(flat)
    _sigmoid_into(flat, out)
    return out.reshape(np.shape(logits))
