"""Naive reference for CTC (Graves et al., 2006), typed again from ../shared/LOSSES.md.

Nothing here imports from ``service``. The forward recursion over the extended label sequence
l' = (blank, l_1, blank, l_2, ..., l_L, blank), in log space with a log-sum-exp written out:

    alpha_0(0) = log y_0(blank), alpha_0(1) = log y_0(l_1),
    alpha_t(s) = log y_t(l'_s) + logsumexp(alpha_{t-1}(s), alpha_{t-1}(s - 1),
                                           alpha_{t-1}(s - 2) if l'_s != blank and
                                                               l'_s != l'_{s-2}),
    log p(l | x) = logsumexp(alpha_{T'-1}(2L), alpha_{T'-1}(2L - 1)),

over the first T' = input_lengths[n] frames. log y_t(k) is the log-softmax of the logits over
the last axis, or log(clip(p, eps, 1)) for probabilities (LOSSES.md: upper clip at 1). An
element is a sequence: l_n = -log p(l | x), divided by max(L, 1) when ``length_normalized``;
an infeasible sample (p = 0) is +inf, or 0 with ``zero_infinity``. The brute-force sum over
every alignment path, an independent check of this recursion, is in
tests/kernels/test_sequence_golden.py.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tests.reference.classification import DEFAULT_EPS, log_softmax

Params = Mapping[str, Any]


def log_sum_exp(values: Sequence[float]) -> float:
    """log sum_k e^{v_k}, the largest taken out first; -inf for no term or only -inf terms."""
    finite = [v for v in values if v != -math.inf]
    if not finite:
        return -math.inf
    peak = max(finite)
    return peak + math.log(math.fsum(math.exp(v - peak) for v in finite))


def frame_log_probabilities(frames: np.ndarray, params: Params) -> list[list[float]]:
    """log y_t(k) for every frame t of one sample (T, C)."""
    rows = np.asarray(frames, dtype=np.float64).tolist()
    if params.get("from_logits", False):
        return [log_softmax(row) for row in rows]
    eps = params.get("eps", DEFAULT_EPS)
    return [[math.log(min(max(p, eps), 1.0)) for p in row] for row in rows]


def ctc_log_likelihood(log_probs: Sequence[Sequence[float]], labels: Sequence[int], blank: int):
    """log p(labels | input) by the forward recursion over all T' = len(log_probs) frames."""
    extended = [blank]
    for label in labels:
        extended += [label, blank]
    alpha = [-math.inf] * len(extended)
    alpha[0] = log_probs[0][blank]
    if len(extended) > 1:
        alpha[1] = log_probs[0][extended[1]]
    for frame in log_probs[1:]:
        previous = alpha
        alpha = []
        for s, symbol in enumerate(extended):
            terms = [previous[s]]
            if s >= 1:
                terms.append(previous[s - 1])
            if s >= 2 and symbol != blank and symbol != extended[s - 2]:
                terms.append(previous[s - 2])
            alpha.append(log_sum_exp(terms) + frame[symbol])
    return log_sum_exp(alpha[-2:])


def sample_lengths(params: Params, samples: int, frames: int) -> tuple[list[int], list[int]]:
    """(input_lengths, target_lengths); input_lengths default to T."""
    input_lengths = params.get("input_lengths")
    inputs = [frames] * samples if input_lengths is None else [int(t) for t in input_lengths]
    return inputs, [int(length) for length in params["target_lengths"]]


def ctc_losses(predictions: np.ndarray, targets: np.ndarray, params: Params) -> list[float]:
    """-log p(target_n | input_n) per sample (LOSSES.md "Sequences")."""
    predictions = np.asarray(predictions, dtype=np.float64)
    samples, frames = predictions.shape[:2]
    inputs, lengths = sample_lengths(params, samples, frames)
    labels = np.asarray(targets, dtype=np.float64).reshape(samples, -1)
    blank = params.get("blank", 0)
    losses = []
    for n in range(samples):
        log_probs = frame_log_probabilities(predictions[n, : inputs[n]], params)
        target = [int(label) for label in labels[n, : lengths[n]]]
        loss = -ctc_log_likelihood(log_probs, target, blank)
        if loss == math.inf and params.get("zero_infinity", False):
            loss = 0.0
        if params.get("length_normalized", False):
            loss /= max(lengths[n], 1)
        losses.append(loss)
    return losses


def repeats(labels: Sequence[int]) -> int:
    """The number of adjacent equal labels (each needs a blank between them)."""
    return sum(1 for a, b in itertools.pairwise(labels) if a == b)


def feasible(input_length: int, labels: Sequence[int]) -> bool:
    """An alignment exists: T' >= L + the number of adjacent repeats."""
    return input_length >= len(labels) + repeats(labels)


def ctc_grid(shape: tuple[int, ...], params: Params) -> tuple[int, ...]:
    return (shape[0],)


def ctc_owners(predictions: np.ndarray, targets: np.ndarray, params: Params) -> np.ndarray:
    """Entry (n, t, k) enters sequence n if t < input_lengths[n]; later frames enter nothing."""
    samples, frames = predictions.shape[:2]
    inputs, _ = sample_lengths(params, samples, frames)
    owners = np.zeros((*predictions.shape, samples), dtype=bool)
    for n in range(samples):
        owners[n, : inputs[n], :, n] = True
    return owners
