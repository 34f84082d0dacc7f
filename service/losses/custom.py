"""The custom loss: an elementwise expression in ``p`` and ``y``, declared like every other loss.

The grammar, the derivative and the evaluation are in :mod:`service.expressions`. Here: the params
model (which parses and compiles the expression, so every problem with it is a 422 at
``["body", "params", "expression"]`` that names the column, and every problem with a constant
one at ``["body", "params", "constants", <name>]``), the kernel that runs the compiled program,
and the registry record. An expression longer than 2000 characters is a 422 like every other
params constraint (a 413 is for the configured body and element limits).
"""

from __future__ import annotations

import keyword
from typing import Annotated, Any

import numpy as np
from pydantic import (
    AfterValidator,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from service.expressions import MAX_LENGTH, CompiledExpression, ExpressionError, compile_expression
from service.expressions import evaluate as evaluate_program
from service.expressions import parse as parse_expression
from service.expressions.tree import FUNCTIONS, VARIABLES
from service.losses.fields import Float
from service.losses.registry import Formula, LossSpec, Params, register
from service.validation.contracts import Elementwise, Inputs
from service.validation.errors import StructureError

MAX_CONSTANTS = 32
EXAMPLE_EXPRESSION = "(p - y)**2 * where(y > 0.5, 2, 1)"


def _not_reserved(name: str) -> str:
    if name in VARIABLES or name in FUNCTIONS or keyword.iskeyword(name):
        what = "a variable" if name in VARIABLES else "a function" if name in FUNCTIONS else None
        raise PydanticCustomError(
            "reserved_name",
            "{name} is {what}; a constant needs another name",
            {"name": repr(name), "what": what or "a Python keyword"},
        )
    return name


ConstantName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=32),
    AfterValidator(_not_reserved),
]


class Constants(dict[str, float]):
    """``{name: number}`` validated as ``dict[ConstantName, Float]``. A class of its own (not the
    bare ``dict[...]``) so that an error keeps the constant's name in its ``loc``
    (``["body", "params", "constants", "k"]``): :func:`service.api.v1.losses.structure_error`
    reads a field annotated with several type arguments as a union and drops that part."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return handler.generate_schema(dict[ConstantName, Float])


class CustomParams(Params):
    """An expression in p and y (API.md, "Custom losses"), and the constants it names."""

    constants: Constants = Field(
        default=Constants(),
        max_length=MAX_CONSTANTS,
        description="Named constants of the expression: identifier -> finite number "
        f"(at most {MAX_CONSTANTS}; not p, y, a function name or a Python keyword).",
    )
    expression: str = Field(
        min_length=1,
        max_length=MAX_LENGTH,
        description="Elementwise loss in p (prediction) and y (target): numbers, p, y, the "
        "constants, + - * / **, unary minus, where(condition, a, b) with one comparison "
        "(< <= > >= == !=), and abs exp log log1p expm1 sqrt square sin cos tanh sigmoid "
        f"softplus relu sign minimum maximum clip. At most {MAX_LENGTH} characters, 500 terms, "
        "64 levels of nesting.",
        examples=[EXAMPLE_EXPRESSION],
    )

    @field_validator("expression")
    @classmethod
    def _compiles(cls, expression: str, info: ValidationInfo) -> str:
        constants = info.data.get("constants")  # absent when the constants were refused
        try:
            if constants is None:
                parse_expression(expression, None)  # report syntax errors too
            else:
                compile_expression(expression, constants)
        except ExpressionError as error:
            raise PydanticCustomError(
                "invalid_expression", "{message}", {"message": error.message}
            ) from None
        return expression


def compiled(params: CustomParams) -> dict[str, CompiledExpression]:
    """The kernel's argument: the compiled expression (from the cache: validation built it)."""
    try:
        return {"expression": compile_expression(params.expression, params.constants)}
    except ExpressionError as error:  # only if params were built without validation
        raise StructureError(["body", "params", "expression"], error.message) from None


def custom_kernel(
    predictions: np.ndarray,
    targets: np.ndarray,
    scale: np.ndarray,
    losses: np.ndarray,
    gradient: np.ndarray,
    expression: CompiledExpression,
) -> None:
    """The elementwise kernel signature, running the expression's program in the machine."""
    program = expression.full_program if gradient.size else expression.value_program
    evaluate_program(
        predictions,
        targets,
        scale,
        losses,
        gradient,
        program.opcodes,
        program.operands,
        program.numbers,
        program.register_count,
        program.outputs[0],
        program.outputs[-1],
    )


def custom_work(inputs: Inputs, params: CustomParams) -> float:
    """Estimated seconds: the entries times the cost of the expression's program (value and
    derivative), instruction by instruction."""
    expression = compile_expression(params.expression, params.constants)
    return inputs.predictions.size * expression.full_program.seconds_per_element()


def describe(*computed: Any) -> dict[str, Any]:
    """extras: ``{"expression", "derivative"}``, both normalised (the compiled program is
    cached, so this costs a dictionary lookup)."""
    params: CustomParams = computed[-1]
    expression = compile_expression(params.expression, params.constants)
    return {"expression": expression.expression, "derivative": expression.derivative}


_EXAMPLE_DERIVATIVE = compile_expression(EXAMPLE_EXPRESSION, {}).derivative

CUSTOM = register(
    LossSpec(
        name="custom",
        family="custom",
        summary="User-defined elementwise loss: an expression in p and y, differentiated "
        "exactly by the service.",
        formula=Formula(
            loss="l = params.expression evaluated at (p, y) for every entry (this generic "
            f"formula stands for every expression), e.g. l = {EXAMPLE_EXPRESSION}",
            gradient="dl/dp = the exact symbolic derivative of the expression (0 at a kink; "
            f"where() differentiates the branch taken), e.g. dl/dp = {_EXAMPLE_DERIVATIVE}",
        ),
        params=CustomParams,
        contract=Elementwise(),
        kernel=custom_kernel,
        kernel_args=compiled,
        example={
            "predictions": [[0.2, 0.8], [0.6, 0.4]],
            "targets": [[0, 1], [1, 0]],
            "params": {"expression": EXAMPLE_EXPRESSION},
        },
        properties=frozenset(),  # nothing holds for every expression
        extras=describe,
        work=custom_work,
        references=("API.md, Custom losses",),
        notes="Comparisons only as the first argument of where(condition, a, b), one per "
        "where (nest where for a range; no and / or / not). minimum / maximum at a tie and clip "
        "at its bounds have derivative 0 unless both sides agree; sign has derivative 0. A "
        "value or gradient that is not finite (a pole such as log(p) at p <= 0 or 1/(p - y) at "
        "p = y, an overflow) is a 422 naming the first sample. Evaluated by one precompiled "
        "kernel: a new expression costs about a millisecond, never a compilation.",
    )
)
