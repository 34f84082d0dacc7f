"""What a request will cost, estimated before it runs: seconds of one core.

Each loss declares its cost per prediction entry (:attr:`LossSpec.entry_seconds`, measured by
``python -m bench.work`` on this project's machine class), or a function of its inputs where the
cost is not per entry (CTC's forward-backward, a custom expression's program). A request adds the
JSON encoding of its outputs and, for ``/v1/evaluate``, every term and metric.

The estimate decides two things (:mod:`service.compute.pipeline`): a request over
``LOSS_SERVICE_MAX_WORK_SECONDS`` is refused with a 413 that says what fits, and one over
``LOSS_SERVICE_HEAVY_WORK_SECONDS`` computes in the heavy lane, so cheap requests never wait
behind it. Estimates are for a core of the reference machine; a slower host takes longer, and
the compute deadline (:mod:`service.compute.deadline`) bounds what an estimate misses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.losses.registry import LossSpec
from service.validation.contracts import Inputs
from service.validation.errors import WorkTooLarge

#: Seconds per output entry written as JSON (orjson from NumPy, measured ~25-40 ns).
JSON_OUTPUT_SECONDS = 40e-9
#: Seconds per output entry written as little-endian bytes (the /v2 binary extension).
BINARY_OUTPUT_SECONDS = 1e-9
#: Seconds per entry of a classification metric (thresholds, confusion counts, the ROC sort).
METRIC_SECONDS = 60e-9


@dataclass(slots=True)
class Estimate:
    """Estimated seconds of a request's computation, and the entries they are spread over (so
    a refusal can say how many would fit)."""

    seconds: float
    entries: int
    names: str  # the losses, e.g. "mse" or "mse, mae"

    def check(self, limit: float) -> None:
        """413 when over ``limit`` seconds, saying how much fits."""
        if self.seconds <= limit:
            return
        fitting = int(self.entries * limit / self.seconds) if self.seconds > 0 else 0
        raise WorkTooLarge(
            f"this request needs an estimated {self.seconds:.3g} s of compute ({self.names} on "
            f"{self.entries:,} prediction entries); "
            f"the limit is {limit:g} s (LOSS_SERVICE_MAX_WORK_SECONDS): send at most about "
            f"{fitting:,} entries per request with these losses and parameters, or cheaper ones"
        )


def loss_seconds(spec: LossSpec, inputs: Inputs, params: Any) -> float:
    """One loss's computation (kernel with gradient, validation, reduction) on ``inputs``."""
    if spec.work is not None:
        return spec.work(inputs, params)
    return spec.entry_seconds * inputs.predictions.size


def output_seconds(entries: int, binary: bool = False) -> float:
    return entries * (BINARY_OUTPUT_SECONDS if binary else JSON_OUTPUT_SECONDS)


def of_loss(
    spec: LossSpec, inputs: Inputs, params: Any, gradient: bool = True, binary: bool = False
) -> Estimate:
    """One loss on one batch, with its outputs (the gradient has the predictions' entries)."""
    entries = inputs.predictions.size
    out = inputs.predictions.shape[0] + (entries if gradient else 0)
    seconds = loss_seconds(spec, inputs, params) + output_seconds(out, binary)
    return Estimate(seconds, entries, spec.name)


#: Seconds per body byte of decoding JSON (parse, arrays): a body this costly to decode goes to
#: the heavy lane before its work is known.
DECODE_SECONDS_PER_BYTE = 6e-9


def heavy_body_bytes(heavy_seconds: float) -> int:
    """Bodies at least this large are decoded in the heavy lane."""
    return max(1, int(heavy_seconds / DECODE_SECONDS_PER_BYTE))


@dataclass(slots=True)
class Plan:
    """A validated request, its estimate, and the call that computes and encodes its answer."""

    estimate: Estimate
    run: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Limits:
    """What a job may do: elements, estimated seconds in all, and in its current lane."""

    max_elements: int
    max_seconds: float
    inline_seconds: float  # run a plan where it was prepared up to this estimate

    def admit(self, plan: Plan) -> Any:
        """The answer, computed here when the plan is light enough for this lane; else the plan,
        for the heavy lane. A plan over ``max_seconds`` is a 413."""
        plan.estimate.check(self.max_seconds)
        if plan.estimate.seconds <= self.inline_seconds:
            return plan.run()
        return plan
