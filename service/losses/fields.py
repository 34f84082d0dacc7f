"""Parameter fields shared by several losses: one definition, one description, one default."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict, StrictBool

from service.validation.structure import Params

#: A float that accepts integers and refuses strings and booleans.
Float = Annotated[float, Strict()]
NonNegative = Annotated[float, Strict(), Field(ge=0)]

FromLogits = Annotated[
    StrictBool,
    Field(description="Predictions are logits (sigmoid / softmax applied by the loss)."),
]
#: At least 1e-15: below 2^-53, 1 - eps rounds to 1 in float64 and the clip could not keep
#: log(1 - p) finite.
Eps = Annotated[
    float,
    Strict(),
    Field(
        ge=1e-15,
        lt=0.5,
        description="Probabilities are clipped to [eps, 1 - eps] before a log; in [1e-15, 0.5).",
    ),
]
LabelSmoothing = Annotated[
    float,
    Strict(),
    Field(
        ge=0, lt=1, description="Smoothing s in [0, 1): binary y(1-s)+s/2, categorical y(1-s)+s/C."
    ),
]
DenominatorEps = Annotated[
    float,
    Strict(),
    Field(
        ge=1e-15,
        lt=0.5,
        description="Small constant that keeps denominators away from 0; in [1e-15, 0.5).",
    ),
]
Gamma = Annotated[float, Strict(), Field(ge=0, description="Focusing exponent gamma >= 0.")]
Alpha = Annotated[
    Annotated[float, Strict(), Field(ge=0, le=1)] | None,
    Field(description="Balancing weight alpha in [0, 1]; null for none."),
]
Margin = Annotated[float, Strict(), Field(ge=0, description="Margin m >= 0.")]
ClassWeight = Annotated[
    list[NonNegative] | None,
    Field(min_length=1, description="One non-negative weight per class (C numbers); null = all 1."),
]


class NoParams(Params):
    """This loss has no parameters."""
