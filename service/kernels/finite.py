r"""Whether every entry of an array is finite, in one pass that cannot overflow.

:math:`x - x` is 0 for every finite x and NaN for NaN and :math:`\pm\infty`, so the sum of
:math:`x_i - x_i` is 0 exactly when every entry is finite, and never overflows (a plain sum of
finite values near 1e308 would, and warn). ``fastmath={"reassoc"}`` lets LLVM vectorise the sum
by reordering it, which changes nothing here (a sum of zeros is zero in any order; NaN stays
NaN); it assumes nothing about NaN or infinity (unlike blanket ``fastmath``).
"""

from numba import njit

from service.kernels.jit import JIT_OPTIONS


@njit(**JIT_OPTIONS, fastmath={"reassoc"})
def all_finite(values):
    """True when every entry of the 1-D float64 ``values`` is finite."""
    poison = 0.0
    for i in range(values.size):
        poison += values[i] - values[i]
    return poison == 0.0
