"""PyTorch versions of the benchmarked losses: the mean cost, whose ``.backward()`` gives the
gradient with respect to the predictions. Optional: only :mod:`bench.kernels` imports this, and
only when ``import torch`` works (torch is not a dependency of the service).

Each function takes ``(p, y)`` as float64 tensors shaped as :func:`bench.kernels.make_inputs`
builds them (class labels as int64 for the sparse losses) and returns the scalar cost the
service computes with ``reduction="mean"`` and the benchmark's params (``BENCH_PARAMS``: the
cross-entropies, focal losses and KL from logits). Conventions that differ from PyTorch's
defaults, and are set explicitly here:

- the service's mean is over *samples* for the categorical losses (a sample's loss is summed
  over classes) and over entries for the element-wise ones. ``F.kl_div``'s ``"mean"`` divides
  by N x C, so KL uses ``reduction="batchmean"``;
- ``huber``'s and ``smooth_l1``'s thresholds are passed (delta = 1, beta = 1), as is
  ``poisson_nll_loss``'s ``log_input=True, full=False`` (no Stirling term);
- the hinge losses use ``relu``, whose derivative at the kink is 0 as the kernels' is
  (``clamp`` passes the gradient there). ``torch.nn.HingeEmbeddingLoss`` is a different loss
  (it returns x itself for y = 1) and is not used;
- losses with no ``torch.nn.functional`` counterpart (log_cosh, msle, mape, quantile, the focal
  losses, categorical_hinge) are written with torch ops from the same formula; the focal losses
  are torchvision's ``sigmoid_focal_loss`` formula with no alpha, the service's default.

``NAMES`` lists the losses written here; any other loss gets "—" in the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

LOG_2 = math.log(2.0)


def mse(p, y):
    return F.mse_loss(p, y)


def mae(p, y):
    return F.l1_loss(p, y)


def huber(p, y):
    return F.huber_loss(p, y, delta=1.0)


def smooth_l1(p, y):
    return F.smooth_l1_loss(p, y, beta=1.0)


def log_cosh(p, y):
    a = (p - y).abs()
    return (a + F.softplus(-2.0 * a) - LOG_2).mean()


def msle(p, y):
    return ((torch.log1p(p) - torch.log1p(y)) ** 2).mean()


def mape(p, y, eps=1e-7):
    return (100.0 * (p - y).abs() / y.abs().clamp_min(eps)).mean()


def quantile(p, y, q=0.5):
    r = y - p
    return torch.maximum(q * r, (q - 1.0) * r).mean()


def poisson_nll(p, y):
    return F.poisson_nll_loss(p, y, log_input=True, full=False)


def binary_cross_entropy(x, y):
    return F.binary_cross_entropy_with_logits(x, y)


def binary_focal(x, y, gamma=2.0):
    s = torch.sigmoid(x)
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = s * y + (1.0 - s) * (1.0 - y)
    return ((1.0 - p_t) ** gamma * bce).mean()


def hinge(p, y, margin=1.0):
    t = torch.where(y > 0, 1.0, -1.0).to(p.dtype)
    return F.relu(margin - t * p).mean()


def squared_hinge(p, y, margin=1.0):
    t = torch.where(y > 0, 1.0, -1.0).to(p.dtype)
    return (F.relu(margin - t * p) ** 2).mean()


def categorical_cross_entropy(x, y):
    """Class-probability targets (N, C): PyTorch's soft-label cross-entropy."""
    return F.cross_entropy(x, y)


def sparse_categorical_cross_entropy(x, labels):
    return F.cross_entropy(x, labels)


def categorical_focal(x, y, gamma=2.0):
    log_q = F.log_softmax(x, dim=1)
    q = log_q.exp()
    return -(y * (1.0 - q) ** gamma * log_q).sum(dim=1).mean()


def categorical_hinge(p, y):
    positive = (y * p).sum(dim=1)
    negative = ((1.0 - y) * p).amax(dim=1)
    return F.relu(negative - positive + 1.0).mean()


def multi_margin(x, labels):
    return F.multi_margin_loss(x, labels, p=1, margin=1.0)


def kl_divergence(x, y):
    return F.kl_div(F.log_softmax(x, dim=1), y, reduction="batchmean")


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    function.__name__: function
    for function in (
        mse,
        mae,
        huber,
        smooth_l1,
        log_cosh,
        msle,
        mape,
        quantile,
        poisson_nll,
        binary_cross_entropy,
        binary_focal,
        hinge,
        squared_hinge,
        categorical_cross_entropy,
        sparse_categorical_cross_entropy,
        categorical_focal,
        categorical_hinge,
        multi_margin,
        kl_divergence,
    )
}
NAMES = frozenset(LOSSES)
#: Losses whose targets are class labels, given to torch as int64.
LABELS = frozenset({"sparse_categorical_cross_entropy", "multi_margin"})


def call(name: str, predictions, targets) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A forward + backward of ``name`` on float64 NumPy arrays; returns (cost, gradient).

    The tensors are made once, outside the call (``from_numpy`` shares the arrays' memory), as
    the kernel's contract views are; the call is the forward pass and ``.backward()``.
    """
    loss = LOSSES[name]
    p = torch.from_numpy(predictions).requires_grad_(True)
    y = torch.from_numpy(targets.astype("int64") if name in LABELS else targets)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        p.grad = None
        cost = loss(p, y)
        cost.backward()
        return cost, p.grad

    return run
