"""Sequence losses: predictions ``(N, T, C)``, class axis last (the layout of sequence models).

``sequence_cross_entropy`` is token-level cross-entropy: the sparse categorical kernel on a
``(N * T, C, 1)`` view, with the top-level ``mask`` over ``(N, T)`` and ``ignore_index``.
``ctc`` is Connectionist Temporal Classification (service/losses/ctc.py).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from pydantic import Field, StrictInt

from service.kernels import categorical as kernels
from service.losses.domains import probability_predictions
from service.losses.fields import Eps, FromLogits, LabelSmoothing
from service.losses.registry import Formula, LossSpec, Params, register
from service.reduction import Reduced, Weights
from service.validation.contracts import Batch, ClassLabels

LOG_FLOAT64_MAX = math.log(sys.float_info.max)


class SequenceCrossEntropyParams(Params):
    from_logits: FromLogits = False
    label_smoothing: LabelSmoothing = 0.0
    ignore_index: StrictInt = Field(-100, description="Tokens whose target equals this weigh 0.")
    eps: Eps = 1e-7


def sequence_extras(
    batch: Batch, losses: Any, weights: Weights, reduced: Reduced, params: Any
) -> dict[str, float]:
    """``log_perplexity`` = sum / weight_sum (the mean token loss; 0 when no token counts);
    ``perplexity`` = its exp, given only where that fits in float64 (a mean token loss below
    ~709.78), so a 200 never carries Infinity and a finite loss is never refused for it;
    ``tokens`` = the summed token weights mask x (target != ignore_index), without the sample
    weights."""
    log_perplexity = reduced.mean  # sum / weight_sum, formed without their underflow
    extras = {"log_perplexity": log_perplexity, "tokens": float(weights.per_sample_total.sum())}
    if log_perplexity < LOG_FLOAT64_MAX:
        extras["perplexity"] = math.exp(log_perplexity)
    return extras


SEQUENCE_CROSS_ENTROPY = register(
    LossSpec(
        name="sequence_cross_entropy",
        entry_seconds=100e-9,
        family="sequence",
        summary="Token-level cross-entropy over (N, T, C) with a (N, T) mask and ignore_index.",
        formula=Formula(
            loss="per token (n, t): y' = (1 - s) onehot(t) + s / C; l = -sum_c y'_c log q_c, "
            "q = softmax over the last axis (log-sum-exp) or clip(p, eps, 1 - eps)",
            gradient="logits: dl/dx_c = q_c - y'_c; probabilities: dl/dp_c = -y'_c / q_c",
        ),
        params=SequenceCrossEntropyParams,
        contract=ClassLabels("sequence"),
        kernel=kernels.sparse_categorical_cross_entropy,
        kernel_args=lambda params: {"smoothing": params.label_smoothing},
        example={
            "predictions": [
                [[2.0, 0.5, -1.0], [0.1, 2.2, 0.3]],
                [[0.3, 0.2, 1.5], [1.0, 1.0, 1.0]],
            ],
            "targets": [[0, 1], [2, -100]],
            "mask": [[1, 1], [1, 0]],
            "params": {"from_logits": True},
        },
        domain=probability_predictions,
        extras=sequence_extras,
        properties=frozenset({"nonnegative"}),
        references=("torch.nn.CrossEntropyLoss on (N*T, C)", "keras SparseCategoricalCrossentropy"),
        notes="extras.log_perplexity = sum / weight_sum (the mean token loss, under either "
        "reduction); extras.perplexity = exp(log_perplexity), which is exp(cost) under "
        "'mean', present where it fits in float64 (log_perplexity < 709.78). extras.tokens = "
        "sum of mask x (target != ignore_index), not multiplied by sample_weight.",
    )
)
