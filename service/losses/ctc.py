"""Connectionist Temporal Classification on ``(N, T, C)`` with padded targets ``(N, S)``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict, StrictBool

from service.kernels import ctc as kernels
from service.losses.domains import probability_predictions
from service.losses.fields import Eps, FromLogits
from service.losses.registry import Formula, LossSpec, Params, register
from service.validation.contracts import Alignments, Inputs

Length = Annotated[int, Strict(), Field(ge=0)]
InputLength = Annotated[int, Strict(), Field(ge=1)]


class CtcParams(Params):
    target_lengths: list[Length] = Field(
        ..., min_length=1, description="Required: the length of each target, N integers in [0, S]."
    )
    input_lengths: list[InputLength] | None = Field(
        None, description="The frames each sample uses, N integers in [1, T]; default all T."
    )
    blank: Annotated[int, Strict(), Field(ge=0)] = Field(0, description="The blank class index.")
    from_logits: FromLogits = False
    eps: Eps = 1e-7
    zero_infinity: StrictBool = Field(
        False, description="Score infeasible samples 0 (loss and gradient) instead of a 422."
    )
    length_normalized: StrictBool = Field(
        False, description="Divide each sample's loss by max(target_length, 1) (PyTorch 'mean')."
    )


def ctc_work(inputs: Inputs, params: CtcParams) -> float:
    """Estimated seconds: the log-softmax over every entry, then the forward-backward lattice of
    T x (2S + 1) cells per sample (``python -m bench.work`` measures ~47 ns per cell)."""
    predictions, targets = inputs.predictions, inputs.targets
    samples, frames = predictions.shape[:2] if predictions.ndim >= 2 else (1, 1)
    labels = targets.shape[1] if targets.ndim >= 2 else 1
    return 30e-9 * predictions.size + 60e-9 * samples * frames * (2 * labels + 1)


CTC = register(
    LossSpec(
        name="ctc",
        family="sequence",
        summary="CTC: -log p(target | input), summed over all alignments (Graves et al., 2006).",
        formula=Formula(
            loss="l_n = -log sum over alignments pi collapsing to the target of prod_t y_t(pi_t); "
            "log y = log_softmax(x) or log(clip(p, eps, 1)); / max(S_n, 1) when length_normalized",
            gradient="gamma_t(k) = posterior occupancy of class k at frame t (forward-backward); "
            "logits: dl/dx_t(j) = q_t(j) - gamma_t(j); probabilities: dl/dp_t(k) = -gamma_t(k) / p; "
            "0 past input_lengths",
        ),
        params=CtcParams,
        contract=Alignments(),
        kernel=kernels.ctc,
        example={
            "predictions": [
                [[0.5, 0.3, 0.2], [0.4, 0.1, 0.5], [0.6, 0.3, 0.1]],
                [[0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]],
            ],
            "targets": [[1, 2], [1, 0]],
            "params": {"target_lengths": [2, 1]},
        },
        domain=probability_predictions,
        work=ctc_work,
        properties=frozenset({"nonnegative"}),
        references=("torch.nn.CTCLoss", "Graves et al., ICML 2006"),
        notes="The gradient is exact for both input kinds; for probabilities PyTorch's CTC "
        "backward assumes normalised log-probabilities and is not the derivative. "
        "length_normalized=true matches PyTorch's reduction='mean' per sample (before the "
        "service's own weighted mean). Infeasible samples are a 422 unless zero_infinity.",
    )
)
