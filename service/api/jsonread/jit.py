"""How the reader's numba functions are compiled.

Every function uses the project's kernel options (:mod:`service.kernels.jit`: cached, no GIL,
IEEE division, no fastmath). The few small functions on the per-byte and per-number paths are
also inlined into their callers by numba itself (``inline="always"``): a call that passes an
array costs atomic reference-count updates, and inlining the per-number path made the scan of
the benchmark body about 12 % faster (thread CPU time). It also makes compilation slower (see
``bench/json_read.py``), which the on-disk cache pays once.
"""

from service.kernels.jit import element, kernel

__all__ = ["inline_kernel", "kernel"]

#: Compile a function with the project's options, inlined where it is called.
inline_kernel = element
