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
"""

from typing import Any

from numba import njit

JIT_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


def kernel(function):
    """Compile ``function`` with the project's kernel options."""
    return njit(**JIT_OPTIONS)(function)


def element(function):
    """Compile ``function`` to be inlined into every kernel that calls it."""
    return njit(inline="always", **JIT_OPTIONS)(function)
