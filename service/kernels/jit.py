"""The one place that says how kernels are compiled.

- ``cache=True``: compiled machine code is kept in numba's cache (NUMBA_CACHE_DIR), so a
  restart loads instead of compiling.
- ``nogil=True``: kernels run in worker threads without holding the GIL.
- ``error_model="numpy"``: float division by zero gives inf / NaN as IEEE 754 says, instead of
  raising ZeroDivisionError inside the kernel (numba's default, Python's semantics). Kernels
  never raise; the engine's finiteness stage turns a non-finite result into a 422. It also
  drops the zero checks that keep loops from vectorising.
- No ``fastmath``: it lets LLVM assume no NaN or Inf, so ``isnan`` checks compile to False.
"""

from typing import Any

from numba import njit

JIT_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


def kernel(function):
    """Compile ``function`` with the project's kernel options."""
    return njit(**JIT_OPTIONS)(function)
