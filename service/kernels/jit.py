"""The one place that says how kernels are compiled.

- ``cache=True``: compiled machine code is kept in numba's cache (NUMBA_CACHE_DIR), so a
  restart loads instead of compiling.
- ``nogil=True``: kernels run in worker threads without holding the GIL.
- ``error_model="numpy"``: float division by zero gives inf / NaN as IEEE 754 says, instead of
  raising ZeroDivisionError inside the kernel (numba's default, Python's semantics). Kernels
  never raise; the engine's finiteness stage turns a non-finite result into a 422. It also
  drops the zero checks that keep loops from vectorising.
- No ``fastmath``: it lets LLVM assume no NaN or Inf, so ``isnan`` checks compile to False.
  Not even its ``contract`` flag alone: LLVM fuses a flagged product and sum into FMA only
  where both sit in one basic block of the machine code, so the same entry got different bits
  in a loop's vectorised body and in its scalar remainder (binary cross-entropy with label
  smoothing: a call split over threads differed from the whole call in the last bit). Where
  FMA is wanted, :func:`muladd` says so, one operation at a time.

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

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

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


def muladd(a, b, c):
    """``a * b + c`` for float64s: one fused multiply-add (one rounding) where the CPU has FMA
    (every x86-64-v3 and v4 CPU, every arm64), a product and a sum elsewhere (the image's
    ``generic`` and ``x86-64-v2`` caches, and plain Python: the kernels-as-python test run).
    Compiled, it is LLVM's ``llvm.fmuladd``, decided once per compiled CPU for every use alike:
    vectorised body or scalar remainder, the same bits for the same entry. The polynomials of
    :mod:`.vmath` use it (1e6 entries, one thread: Poisson 1.58 -> 1.10 ms, binary
    cross-entropy 5.17 -> 3.94 ms, with Estrin's order for exp); results then
    differ between CPUs with and without FMA in the last bits, within the functions' accuracy
    (tests/kernels/test_fma_levels.py)."""
    return a * b + c


@intrinsic
def _fmuladd(typingctx, a, b, c):
    if not all(isinstance(argument, types.Float) for argument in (a, b, c)):
        return None
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, arguments):
        double = ir.DoubleType()
        fused = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(double, [double] * 3), "llvm.fmuladd.f64"
        )
        return builder.call(fused, arguments)

    return signature, codegen


@overload(muladd, inline="always")
def _muladd(a, b, c):
    return lambda a, b, c: _fmuladd(a, b, c)  # type: ignore[call-arg]  # (numba adds typingctx)
