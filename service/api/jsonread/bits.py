"""Reinterpret a double's 64 bits as an unsigned integer and back, inside numba.

The converters build a double from its sign, exponent and significand fields; numba has no
bit cast of scalars, so this is one LLVM ``bitcast`` (no instruction at all on x86-64).
"""

from typing import TYPE_CHECKING, Any

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

if TYPE_CHECKING:  # what the intrinsics are to their callers (numba adds the typing context)

    def bits_to_float(bits: Any) -> float: ...

    def float_to_bits(value: Any) -> Any: ...


@intrinsic  # type: ignore[no-redef]
def bits_to_float(typingctx, bits):
    """The double whose IEEE 754 encoding is the uint64 ``bits``."""
    if bits != types.uint64:
        return None

    def codegen(context, builder, signature, arguments):
        return builder.bitcast(arguments[0], ir.DoubleType())

    return types.float64(types.uint64), codegen


@intrinsic  # type: ignore[no-redef]
def float_to_bits(typingctx, value):
    """The IEEE 754 encoding of the double ``value``, as a uint64."""
    if value != types.float64:
        return None

    def codegen(context, builder, signature, arguments):
        return builder.bitcast(arguments[0], ir.IntType(64))

    return types.uint64(types.float64), codegen
