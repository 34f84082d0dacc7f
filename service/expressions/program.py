"""From expression trees to a program of :mod:`service.kernels.expressions`.

Every distinct subexpression becomes one instruction, children first, so a subexpression the
value and its derivative share (``sigmoid(u)`` in ``softplus(u)`` and its slope, ``p - y``
in ``(p - y)**2`` and ``2 * (p - y)``) is computed once per element. A register is reused as
soon as the last instruction that reads it has run (an instruction may write the register it
reads: every operation is elementwise), so a program needs about as many registers as its
expression is deep, not as it is long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from service.expressions.tree import Node, number, unique_nodes
from service.kernels import expressions as machine

OPCODES = {
    "neg": machine.NEGATE,
    "+": machine.ADD,
    "-": machine.SUBTRACT,
    "*": machine.MULTIPLY,
    "/": machine.DIVIDE,
    "**": machine.POWER,
    "<": machine.LESS,
    "<=": machine.LESS_EQUAL,
    ">": machine.GREATER,
    ">=": machine.GREATER_EQUAL,
    "==": machine.EQUAL,
    "!=": machine.NOT_EQUAL,
    "abs": machine.ABS,
    "exp": machine.EXP,
    "log": machine.LOG,
    "log1p": machine.LOG1P,
    "expm1": machine.EXPM1,
    "sqrt": machine.SQRT,
    "square": machine.SQUARE,
    "sin": machine.SIN,
    "cos": machine.COS,
    "tanh": machine.TANH,
    "sigmoid": machine.SIGMOID,
    "softplus": machine.SOFTPLUS,
    "relu": machine.RELU,
    "sign": machine.SIGN,
    "minimum": machine.MINIMUM,
    "maximum": machine.MAXIMUM,
    "clip": machine.CLIP,
    "where": machine.WHERE,
}


_TWO = number(2.0)

#: Estimated nanoseconds per element of one instruction, from timing the machine on this
#: project's machine class (``python -m bench.work``): loads, arithmetic, comparisons and
#: selections ~1, transcendental functions 5-20, ``**`` (C's pow) ~25. ``sin`` and ``cos`` are
#: priced at their worst: arguments like 1e299 make their argument reduction ~5x slower
#: (~65 ns). The estimate errs high on purpose: it decides what a request may cost.
INSTRUCTION_NANOSECONDS = {
    machine.DIVIDE: 2.0,
    machine.POWER: 30.0,
    machine.SQRT: 3.0,
    machine.EXP: 6.0,
    machine.LOG: 7.0,
    machine.LOG1P: 14.0,
    machine.EXPM1: 16.0,
    machine.TANH: 15.0,
    machine.SIGMOID: 10.0,
    machine.SOFTPLUS: 22.0,
    machine.SIN: 70.0,
    machine.COS: 70.0,
}
#: Per element, whatever the program: the engine's validation, weights and reduction.
BASE_NANOSECONDS = 8.0


@dataclass(frozen=True)
class Program:
    """The arrays :func:`service.kernels.expressions.evaluate` takes; ``outputs``: the register of
    each root, in the order given to :func:`assemble`."""

    opcodes: np.ndarray
    operands: np.ndarray
    numbers: np.ndarray
    register_count: int
    outputs: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.opcodes.size)

    def seconds_per_element(self) -> float:
        """Estimated seconds of one core per element (see INSTRUCTION_NANOSECONDS)."""
        nanoseconds = BASE_NANOSECONDS + sum(
            INSTRUCTION_NANOSECONDS.get(int(opcode), 1.0) for opcode in self.opcodes
        )
        return nanoseconds * 1e-9


def assemble(roots: tuple[Node, ...], constants: Mapping[str, float]) -> Program:
    """The program computing every root; names other than p and y read ``constants``."""
    order = list(unique_nodes(*roots))
    last_read = {node: position for position, node in enumerate(order)}
    for position, node in enumerate(order):
        for argument in node.arguments:
            last_read[argument] = position
    kept = set(roots)
    register_of: dict[Node, int] = {}
    free: list[int] = []
    register_count = 0
    opcodes = np.zeros(len(order), dtype=np.int64)
    operands = np.zeros((len(order), 4), dtype=np.int64)
    numbers = np.zeros(len(order), dtype=np.float64)
    for position, node in enumerate(order):
        inputs = [register_of[argument] for argument in node.arguments]
        for argument in set(node.arguments):
            if last_read[argument] == position and argument not in kept:
                free.append(register_of[argument])
        if free:
            register = free.pop()
        else:
            register, register_count = register_count, register_count + 1
        register_of[node] = register
        opcodes[position], numbers[position] = _instruction(node, constants)
        if opcodes[position] == machine.SQUARE:
            inputs = inputs[:1]
        operands[position, : 1 + len(inputs)] = [register, *inputs]
    return Program(
        opcodes=opcodes,
        operands=operands,
        numbers=numbers,
        register_count=max(register_count, 1),
        outputs=tuple(register_of[root] for root in roots),
    )


def _instruction(node: Node, constants: Mapping[str, float]) -> tuple[int, float]:
    if node.operator == "number":
        return machine.LOAD_NUMBER, float(node.value)  # type: ignore[arg-type]
    if node.operator == "name":
        if node.value == "p":
            return machine.LOAD_P, 0.0
        if node.value == "y":
            return machine.LOAD_Y, 0.0
        return machine.LOAD_NUMBER, float(constants[node.value])  # type: ignore[index]
    if node.operator == "**" and node.arguments[1] == _TWO:
        return machine.SQUARE, 0.0  # u * u: what C's pow(u, 2) returns, without its cost
    return OPCODES[node.operator], 0.0
