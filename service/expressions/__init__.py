"""Custom losses: an elementwise expression in p and y, differentiated exactly, evaluated fast.

Parts: :mod:`~service.expressions.grammar` (the grammar, the parser and its limits),
:mod:`~service.expressions.tree` (the expression tree and its normalised text),
:mod:`~service.expressions.derivative` (the symbolic derivative in p, simplified),
:mod:`~service.expressions.program` (trees to register-machine programs),
:mod:`~service.kernels.expressions` (the one numba kernel that runs every program) and
:mod:`~service.expressions.compiler` (the pipeline, with a bounded LRU of compiled expressions).

Why a register machine and not one numba kernel per expression. The first design composed
jitted closures, one ``@njit`` function per node built by module-level factories
(``add(f, g)`` returning ``node(p, y) = f(p, y) + g(p, y)``), with a loop kernel calling the
root. Measured here (numba 0.68, one core of this machine): 0.4 s to compile
``(p - y)**2 * 2``-sized expressions, about 65 ms more for every node (3.2 s for 45 nodes),
and numba's nested type inference of closures calling closures exceeds Python's recursion
limit from a depth of about 40 — below the grammar's limit of 64 and far from 500 nodes.
Every such compile holds numba's global compiler lock (and mostly the GIL), so one client
could stall all others; numba cannot cache closures on disk, so each worker pays again.

Instead the expression and its derivative become a small program of numpy arrays, run by one
generic kernel (:func:`service.kernels.expressions.evaluate`) compiled once with the project's
options and cached on disk like every other kernel. A new expression costs about a
millisecond to parse, differentiate and assemble, and nothing is ever generated, ``eval``'d
or ``exec``'d from a request. The kernel works block by block (256 elements per
instruction), so decoding an instruction is spread over a block and each instruction is a
tight loop. Measured on 10^6 elements with the gradient: ``(p - y)**2`` 4.7 ns per element
(the hand-written ``mse`` kernel: 2 ns), the API.md example with ``where`` 8.5 ns,
``softplus(-p*y) + 0.1*square(p)`` 33 ns (mostly ``exp`` and ``log1p``, as in any kernel). The
generic kernel compiles once in about 3 s (0.3 s to load from numba's cache), at warm-up.
"""

from service.expressions.compiler import CompiledExpression, compile_expression
from service.expressions.grammar import (
    MAX_LENGTH,
    MAX_NESTING,
    MAX_NODES,
    ExpressionError,
    parse,
)
from service.kernels.expressions import evaluate

__all__ = [
    "MAX_LENGTH",
    "MAX_NESTING",
    "MAX_NODES",
    "CompiledExpression",
    "ExpressionError",
    "compile_expression",
    "evaluate",
    "parse",
]
