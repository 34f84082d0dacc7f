r"""The one numba kernel that evaluates every custom expression: a block-wise register machine.

A program (built by :mod:`service.expressions.program`) is a list of instructions
``opcode, (output, a, b, c), number``: each reads registers ``a``, ``b``, ``c`` and writes
register ``output``, where a register holds one value for each of :data:`BLOCK` consecutive
elements. The kernel runs the whole program on one block of elements at a time, so decoding an
instruction costs 1/BLOCK per element and each instruction is a tight loop over the block;
then it copies the value register into ``losses`` and ``scale`` x the slope register into
``gradient`` (skipped when ``gradient.size == 0``), the signature of every elementwise kernel.

The kernel is compiled once, with the project's options (:mod:`service.kernels.jit`: numba's
disk cache, no GIL, IEEE division, no fastmath), for every expression there will ever be:
a request never triggers a compilation. Like every kernel it imports only numpy and numba
and never raises: a pole gives inf or NaN, which the engine reports as a non-finite result.

Semantics, elementwise: IEEE 754 float64 (``0 / 0`` is NaN, ``log(0)`` is -inf, ``x**y``
is C's ``pow``; ``exp``, ``log``, ``log1p`` and ``expm1`` are :mod:`.vmath`'s, within 1 ulp of
libm's, so their loops over a block vectorise: ``(log1p(p) - log1p(y))**2`` on 1e6 entries
15.0 -> 9.1 ms). NaN propagates through every operation, including ``relu``, ``sign``,
``minimum``, ``maximum`` and ``clip`` (as in numpy), and through ``where`` when its condition
compares a NaN: an undefined condition gives an undefined value, never a silent branch.
``where`` evaluates both branches and keeps the one selected, so a pole in the branch not
taken (``where(p > 0, log(p), 0)``) does no harm.
"""

import math

import numpy as np

from service.kernels import vmath
from service.kernels.jit import kernel, scale_at
from service.kernels.stable import sigmoid, softplus

#: Elements per block: the registers of a block stay in the L1/L2 cache.
BLOCK = 256

# Opcodes. Loads take no register; the others read a (and b, c) in order.
LOAD_P, LOAD_Y, LOAD_NUMBER = 0, 1, 2
NEGATE, ADD, SUBTRACT, MULTIPLY, DIVIDE, POWER = 3, 4, 5, 6, 7, 8
LESS, LESS_EQUAL, GREATER, GREATER_EQUAL, EQUAL, NOT_EQUAL = 9, 10, 11, 12, 13, 14
ABS, EXP, LOG, LOG1P, EXPM1, SQRT, SQUARE = 15, 16, 17, 18, 19, 20, 21
SIN, COS, TANH, SIGMOID, SOFTPLUS, RELU, SIGN = 22, 23, 24, 25, 26, 27, 28
MINIMUM, MAXIMUM, CLIP, WHERE = 29, 30, 31, 32


@kernel
def _sign(x):
    """-1, 0 or 1; NaN for NaN."""
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return x * 0.0  # 0 for 0, NaN for NaN


@kernel
def _relu(x):
    return 0.0 if x <= 0.0 else x  # NaN <= 0 is false: NaN passes through


@kernel
def _minimum(a, b):
    if a != a or b != b:
        return a + b  # NaN
    return a if a <= b else b


@kernel
def _maximum(a, b):
    if a != a or b != b:
        return a + b
    return a if a >= b else b


@kernel
def _truth(holds, a, b):
    """1.0 or 0.0 for a comparison of a and b; NaN when either is NaN (undefined)."""
    if a != a or b != b:
        return math.nan
    return 1.0 if holds else 0.0


@kernel
def _select(condition, a, b):
    if condition != condition:
        return condition
    return a if condition != 0.0 else b


@kernel
def _execute(opcode, output, a, b, c, number, predictions, targets, start, width):
    """One instruction on one block: ``output[j] = f(a[j], b[j], c[j])`` for j < width."""
    if opcode == LOAD_P:
        for j in range(width):
            output[j] = predictions[start + j]
    elif opcode == LOAD_Y:
        for j in range(width):
            output[j] = targets[start + j]
    elif opcode == LOAD_NUMBER:
        for j in range(width):
            output[j] = number
    elif opcode == NEGATE:
        for j in range(width):
            output[j] = -a[j]
    elif opcode == ADD:
        for j in range(width):
            output[j] = a[j] + b[j]
    elif opcode == SUBTRACT:
        for j in range(width):
            output[j] = a[j] - b[j]
    elif opcode == MULTIPLY:
        for j in range(width):
            output[j] = a[j] * b[j]
    elif opcode == DIVIDE:
        for j in range(width):
            output[j] = a[j] / b[j]
    elif opcode == POWER:
        for j in range(width):
            output[j] = a[j] ** b[j]
    elif opcode == LESS:
        for j in range(width):
            output[j] = _truth(a[j] < b[j], a[j], b[j])
    elif opcode == LESS_EQUAL:
        for j in range(width):
            output[j] = _truth(a[j] <= b[j], a[j], b[j])
    elif opcode == GREATER:
        for j in range(width):
            output[j] = _truth(a[j] > b[j], a[j], b[j])
    elif opcode == GREATER_EQUAL:
        for j in range(width):
            output[j] = _truth(a[j] >= b[j], a[j], b[j])
    elif opcode == EQUAL:
        for j in range(width):
            output[j] = _truth(a[j] == b[j], a[j], b[j])
    elif opcode == NOT_EQUAL:
        for j in range(width):
            output[j] = _truth(a[j] != b[j], a[j], b[j])
    elif opcode == ABS:
        for j in range(width):
            output[j] = abs(a[j])
    elif opcode == EXP:
        for j in range(width):
            output[j] = vmath.exp(a[j])
    elif opcode == LOG:
        for j in range(width):
            output[j] = vmath.log(a[j])
    elif opcode == LOG1P:
        for j in range(width):
            output[j] = vmath.log1p(a[j])
    elif opcode == EXPM1:
        for j in range(width):
            output[j] = vmath.expm1(a[j])
    elif opcode == SQRT:
        for j in range(width):
            output[j] = math.sqrt(a[j])
    elif opcode == SQUARE:
        for j in range(width):
            output[j] = a[j] * a[j]
    elif opcode == SIN:
        for j in range(width):
            output[j] = math.sin(a[j])
    elif opcode == COS:
        for j in range(width):
            output[j] = math.cos(a[j])
    elif opcode == TANH:
        for j in range(width):
            output[j] = math.tanh(a[j])
    elif opcode == SIGMOID:
        for j in range(width):
            output[j] = sigmoid(a[j])
    elif opcode == SOFTPLUS:
        for j in range(width):
            output[j] = softplus(a[j])
    elif opcode == RELU:
        for j in range(width):
            output[j] = _relu(a[j])
    elif opcode == SIGN:
        for j in range(width):
            output[j] = _sign(a[j])
    elif opcode == MINIMUM:
        for j in range(width):
            output[j] = _minimum(a[j], b[j])
    elif opcode == MAXIMUM:
        for j in range(width):
            output[j] = _maximum(a[j], b[j])
    elif opcode == CLIP:
        for j in range(width):
            output[j] = _minimum(_maximum(a[j], b[j]), c[j])
    elif opcode == WHERE:
        for j in range(width):
            output[j] = _select(a[j], b[j], c[j])


@kernel
def evaluate(
    predictions,
    targets,
    scale,
    losses,
    gradient,
    opcodes,
    operands,
    numbers,
    register_count,
    value_register,
    slope_register,
):
    r"""``losses[i]`` = value, ``gradient[i]`` = ``scale[i]`` x slope, for every element i.

    ``opcodes`` (k,), ``operands`` (k, 4) registers (output, a, b, c), ``numbers`` (k,) the
    constant of each ``LOAD_NUMBER``; ``register_count`` registers of :data:`BLOCK` values.
    """
    size = predictions.size
    with_gradient = gradient.size != 0
    registers = np.empty((register_count, BLOCK))
    for start in range(0, size, BLOCK):
        width = min(BLOCK, size - start)
        for k in range(opcodes.size):
            _execute(
                opcodes[k],
                registers[operands[k, 0]],
                registers[operands[k, 1]],
                registers[operands[k, 2]],
                registers[operands[k, 3]],
                numbers[k],
                predictions,
                targets,
                start,
                width,
            )
        for j in range(width):
            losses[start + j] = registers[value_register, j]
        if with_gradient:
            for j in range(width):
                gradient[start + j] = scale_at(scale, start + j) * registers[slope_register, j]
