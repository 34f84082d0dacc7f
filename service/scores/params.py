"""What one metric request is: its name, its validated params, and where it sits in the list.

One Pydantic params model per family of metrics; each derives from
:class:`service.losses.registry.Params`, so an unknown key is an error, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, StrictBool

from service.validation.errors import body_loc
from service.validation.structure import Params

Threshold = Annotated[
    float,
    Strict(),
    Field(
        ge=0,
        le=1,
        description="Binary readings: label 1 where the probability is >= threshold; in [0, 1].",
    ),
]
FromLogits = Annotated[
    StrictBool,
    Field(
        description="Predictions are logits: binary readings apply the sigmoid before the "
        "threshold (without it, predictions must be probabilities in [0, 1]); the multiclass "
        "argmax and the roc_auc ranking are unchanged by it.",
    ),
]
Average = Annotated[
    Literal["macro", "micro", "weighted"],
    Field(
        description="Multiclass precision/recall/f1: 'macro' (mean over the labels present), "
        "'micro' (global counts), 'weighted' (mean weighted by support), as scikit-learn. "
        "Ignored by accuracy and by binary readings (the positive class 1).",
    ),
]
OneHot = Annotated[
    StrictBool,
    Field(
        description="Targets of the predictions' shape (N, C, ...) are one-hot multiclass "
        "(exactly one 1 along axis 1). Without it, targets of the predictions' shape are "
        "binary / multi-label (every entry in {0, 1}); targets (N, ...), the predictions "
        "without axis 1, are integer class labels.",
    ),
]


class ClassificationParams(Params):
    """accuracy, precision, recall, f1."""

    threshold: Threshold = 0.5
    from_logits: FromLogits = False
    average: Average = "macro"
    one_hot: OneHot = False


class RocAucParams(Params):
    """roc_auc: binary scores, no threshold."""

    from_logits: FromLogits = False


class RegressionParams(Params):
    """r2, rmse, mae: no parameters."""


@dataclass(frozen=True)
class MetricRequest:
    """A validated metric: ``name``, its ``params`` model, its ``index`` in ``metrics``."""

    name: str
    params: Any
    index: int

    @property
    def loc(self) -> list[str | int]:
        """``["body", "metrics", index]``: where errors about this metric point."""
        return body_loc("metrics", self.index)
