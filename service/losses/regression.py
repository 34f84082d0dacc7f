"""The regression family: elementwise losses on predictions and targets of the same shape.

Formulas follow PyTorch where it has the loss and Keras otherwise (../shared/LOSSES.md); the
conventions of weighting and reduction are the service's (service/reduction.py).
"""

from __future__ import annotations

from pydantic import Field, StrictBool

from service.kernels import regression as kernels
from service.losses.fields import Float, NoParams
from service.losses.registry import Formula, LossSpec, Params, register
from service.validation.contracts import Batch, Elementwise
from service.validation.domain import require_above

ELEMENTWISE = Elementwise()
EXAMPLE = {"predictions": [[0.5, 1.0], [2.0, -1.0]], "targets": [[0.0, 1.5], [2.5, -1.0]]}


class HuberParams(Params):
    delta: Float = Field(
        1.0, gt=0, description="Threshold δ between the quadratic and linear parts."
    )


class SmoothL1Params(Params):
    beta: Float = Field(1.0, ge=0, description="Width β of the quadratic zone; 0 gives L1.")


class MapeParams(Params):
    eps: Float = Field(1e-7, gt=0, description="Floor of |y| in the denominator.")


class QuantileParams(Params):
    quantile: Float = Field(
        0.5, gt=0, lt=1, description="Quantile q in (0, 1); 0.5 is half the MAE."
    )


class PoissonNLLParams(Params):
    log_input: StrictBool = Field(True, description="Predictions are log-rates (true) or rates.")
    eps: Float = Field(
        1e-8, gt=0, description="Added to the rate before the log (log_input false)."
    )


def msle_domain(batch: Batch, _params: NoParams) -> None:
    require_above(batch.predictions, "predictions", -1.0, "msle", strict=True)
    require_above(batch.targets, "targets", -1.0, "msle", strict=True)


def poisson_domain(batch: Batch, params: PoissonNLLParams) -> None:
    require_above(batch.targets, "targets", 0.0, "poisson_nll", strict=False)
    if not params.log_input:
        require_above(batch.predictions, "predictions", 0.0, "poisson_nll", strict=False)


def _elementwise(**fields) -> LossSpec:
    fields.setdefault("params", NoParams)
    fields.setdefault("kernel_args", None)
    fields.setdefault("example", EXAMPLE)
    fields.setdefault("properties", frozenset({"nonnegative", "zero_at_target"}))
    return register(LossSpec(family="regression", contract=ELEMENTWISE, **fields))


MSE = _elementwise(
    name="mse",
    entry_seconds=10e-9,
    aliases=("mean_squared_error",),
    summary="Mean squared error.",
    formula=Formula(loss="l = (p - y)^2", gradient="dl/dp = 2 (p - y)"),
    kernel=kernels.mse,
    references=("torch.nn.MSELoss", "keras.losses.MeanSquaredError"),
)

MAE = _elementwise(
    name="mae",
    entry_seconds=10e-9,
    aliases=("mean_absolute_error", "l1"),
    summary="Mean absolute error (L1).",
    formula=Formula(loss="l = |p - y|", gradient="dl/dp = sign(p - y), 0 at p = y"),
    kernel=kernels.mae,
    references=("torch.nn.L1Loss", "keras.losses.MeanAbsoluteError"),
)

HUBER = _elementwise(
    name="huber",
    entry_seconds=10e-9,
    summary="Huber loss: quadratic near the target, linear beyond delta.",
    formula=Formula(
        loss="d = p - y; l = d^2 / 2 if |d| <= delta else delta (|d| - delta / 2)",
        gradient="dl/dp = d if |d| <= delta else delta sign(d)",
    ),
    params=HuberParams,
    kernel=kernels.huber,
    example={**EXAMPLE, "params": {"delta": 1.0}},
    references=("torch.nn.HuberLoss", "keras.losses.Huber", "Huber (1964)"),
)

SMOOTH_L1 = _elementwise(
    name="smooth_l1",
    entry_seconds=10e-9,
    summary="Smooth L1: quadratic below beta, L1 beyond (Fast R-CNN).",
    formula=Formula(
        loss="d = p - y; l = d^2 / (2 beta) if |d| < beta else |d| - beta / 2; beta = 0 is |d|",
        gradient="dl/dp = d / beta if |d| < beta else sign(d)",
    ),
    params=SmoothL1Params,
    kernel=kernels.smooth_l1,
    example={**EXAMPLE, "params": {"beta": 1.0}},
    references=("torch.nn.SmoothL1Loss", "Girshick, Fast R-CNN (2015)"),
    notes="huber with delta = beta equals beta x smooth_l1 (PyTorch's identity).",
)

LOG_COSH = _elementwise(
    name="log_cosh",
    entry_seconds=40e-9,
    aliases=("logcosh",),
    summary="Logarithm of the hyperbolic cosine of the error.",
    formula=Formula(
        loss="l = log cosh(p - y), computed as |d| + softplus(-2|d|) - log 2 (no overflow)",
        gradient="dl/dp = tanh(p - y)",
    ),
    kernel=kernels.log_cosh,
    references=("keras.losses.LogCosh",),
)

MSLE = _elementwise(
    name="msle",
    entry_seconds=40e-9,
    aliases=("mean_squared_logarithmic_error",),
    summary="Mean squared logarithmic error; predictions and targets must be > -1.",
    formula=Formula(
        loss="l = (log(1 + p) - log(1 + y))^2",
        gradient="dl/dp = 2 (log(1 + p) - log(1 + y)) / (1 + p)",
    ),
    kernel=kernels.msle,
    example={"predictions": [[0.5, 2.0], [3.0, 0.0]], "targets": [[1.0, 2.0], [2.0, 0.5]]},
    domain=msle_domain,
    references=("keras.losses.MeanSquaredLogarithmicError",),
    notes="Keras clips p and y at 0 before the log; here values in (-1, 0) are used as they "
    "are and values <= -1 are a 422.",
)

MAPE = _elementwise(
    name="mape",
    entry_seconds=40e-9,
    aliases=("mean_absolute_percentage_error",),
    summary="Mean absolute percentage error, in percent.",
    formula=Formula(
        loss="l = 100 |y - p| / max(|y|, eps)",
        gradient="dl/dp = 100 sign(p - y) / max(|y|, eps), 0 at p = y",
    ),
    params=MapeParams,
    kernel=kernels.mape,
    example={"predictions": [[90.0, 210.0], [48.0, 5.0]], "targets": [[100.0, 200.0], [50.0, 4.0]]},
    references=("keras.losses.MeanAbsolutePercentageError",),
)

QUANTILE = _elementwise(
    name="quantile",
    entry_seconds=10e-9,
    aliases=("pinball",),
    summary="Quantile (pinball) loss for the q-th conditional quantile.",
    formula=Formula(
        loss="r = y - p; l = max(q r, (q - 1) r)",
        gradient="dl/dp = -q if r > 0, 1 - q if r < 0, 0 at r = 0",
    ),
    params=QuantileParams,
    kernel=kernels.quantile,
    kernel_args=lambda params: {"q": params.quantile},
    example={**EXAMPLE, "params": {"quantile": 0.9}},
    references=("sklearn.metrics.mean_pinball_loss", "Koenker & Bassett (1978)"),
)

POISSON_NLL = _elementwise(
    name="poisson_nll",
    entry_seconds=15e-9,
    aliases=("poisson",),
    summary="Poisson negative log-likelihood of counts y under rate exp(p) (or p).",
    formula=Formula(
        loss="log_input: l = exp(p) - y p; else l = p - y log(p + eps)",
        gradient="log_input: dl/dp = exp(p) - y; else dl/dp = 1 - y / (p + eps)",
    ),
    params=PoissonNLLParams,
    kernel=kernels.poisson_nll,
    example={"predictions": [[0.0, 1.0], [0.5, -1.0]], "targets": [[1.0, 2.0], [0.0, 1.0]]},
    domain=poisson_domain,
    properties=frozenset(),  # the NLL without log(y!) can be negative, and is not 0 at p = y
    references=("torch.nn.PoissonNLLLoss (full=False)",),
    notes="Targets must be >= 0 (counts), and rates p >= 0 when log_input is false. "
    "The Stirling term of PyTorch's full=True is not included.",
)
