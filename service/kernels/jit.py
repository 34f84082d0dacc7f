"""The one place that says how kernels are compiled.

- ``cache=True``: compiled machine code is kept in numba's cache (NUMBA_CACHE_DIR), so a
  restart loads instead of compiling.
- ``nogil=True``: kernels run in worker threads without holding the GIL.
- ``error_model="numpy"``: float division by zero gives inf / NaN as IEEE 754 says, instead of
  raising ZeroDivisionError inside the kernel (numba's default, Python's semantics). Kernels
  never raise; the engine's finiteness stage turns a non-finite result into a 422. It also
  drops the zero checks that keep loops from vectorising.
- No ``fastmath``: it lets LLVM assume no NaN or Inf, so ``isnan`` checks compile to False.

:func:`element` compiles the per-element helpers that kernels call inside their loops
(:mod:`service.kernels.vmath`, :mod:`service.kernels.stable`): inlined at numba's IR level,
so the loop holds their arithmetic and LLVM can vectorise it. LLVM's own inliner leaves a
callee of the size of ``exp`` + ``log1p`` as a call, and a loop with a call stays scalar
(measured: ``stable.logistic`` as a plain kernel made the bce loop 8x slower).

:func:`scale_at` is how a kernel reads its gradient ``scale``: an array with one number per
element, or one number for all (a mean or sum over unweighted elements). numba compiles a
kernel once for each, so the uniform case reads no array at all: for MSE on 1e6 entries the
engine no longer writes 8 MB of equal numbers nor the kernel reads them (1.03 -> 0.58 ms).
"""

from typing import Any

from numba import njit, types
from numba.extending import overload

JIT_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


def kernel(function):
    """Compile ``function`` with the project's kernel options."""
    return njit(**JIT_OPTIONS)(function)


def element(function):
    """Compile ``function`` to be inlined into every kernel that calls it."""
    return njit(inline="always", **JIT_OPTIONS)(function)


def scale_at(scale, index):
    """``scale[index]``, or ``scale`` itself when it is one number."""
    return scale if isinstance(scale, float) else scale[index]


@overload(scale_at, inline="always")
def _scale_at(scale, index):
    if isinstance(scale, types.Float):
        return lambda scale, index: scale
    return lambda scale, index: scale[index]
