r"""Numerically stable scalar building blocks shared by the kernels.

Every function here is finite for every finite input, including logits of :math:`\pm 10^4`.
"""

import numpy as np

from service.kernels import vmath
from service.kernels.jit import element, kernel


@element
def softplus(x):
    r""":math:`\log(1 + e^x)`, as :math:`\max(x, 0) + \operatorname{log1p}(e^{-|x|})`.

    The naive form overflows for x > 709; this one never does, and keeps full precision for
    very negative x (where it is :math:`\approx e^x`).
    """
    return max(x, 0.0) + vmath.log1p(vmath.exp(-abs(x)))


@element
def sigmoid(x):
    r""":math:`1 / (1 + e^{-x})`, evaluated through :math:`e^{-|x|}` so the exponential never
    overflows; :math:`\sigma(-x) = 1 - \sigma(x)` is exact in this form for large |x|. Selects,
    not branches, so a loop around it vectorises."""
    z = vmath.exp(-abs(x))
    return (1.0 if x >= 0.0 else z) / (1.0 + z)


@element
def sign(x):
    """sign(x) with sign(0) = 0: the derivative of |x| taken as 0 at the kink."""
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


@element
def clip(p, low, high):
    return min(max(p, low), high)


@element
def logistic(x):
    r"""``(softplus(x), softplus(-x), sigmoid(x), sigmoid(-x))`` from one ``exp`` and one ``log1p``.

    With :math:`z = e^{-|x|} \in (0, 1]`: :math:`\operatorname{softplus}(\pm x) =
    \max(\pm x, 0) + \operatorname{log1p}(z)`, and the two sigmoids are :math:`1/(1 + z)` and
    :math:`z/(1 + z)`, assigned by the sign of x. Exact complements, no overflow.
    """
    z = vmath.exp(-abs(x))
    log_term = vmath.log1p(z)
    big = 1.0 / (1.0 + z)
    small = z * big
    positive = x >= 0.0  # selects, not branches: a loop around this vectorises
    return (
        (x if positive else 0.0) + log_term,
        (0.0 if positive else -x) + log_term,
        big if positive else small,
        small if positive else big,
    )


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
