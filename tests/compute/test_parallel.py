"""Splitting a kernel call over threads (service/compute/parallel.py) changes nothing but the speed.

Every registered loss, every input kind and rank its sampler draws, with weights and masks:
the call split three ways (threshold lowered to 1) gives bit-identical element losses and
gradient, hence the same cost, to the serial call.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from service.compute import engine, parallel
from service.losses.registry import REGISTRY
from service.validation.contracts import Inputs
from tests.strategies.samplers import kinds_of, random_case, ranks_of

CASES = [
    pytest.param(name, kind, rank, id=f"{name}-{kind}-rank{rank}")
    for name in REGISTRY
    for kind in kinds_of(name)
    for rank in ranks_of(name)
]


def run(case, threads: int, monkeypatch: pytest.MonkeyPatch):
    spec = REGISTRY[case.name]
    inputs = Inputs(case.predictions, case.targets, case.sample_weight, case.mask)
    return engine.compute(spec, inputs, spec.params(**case.params), threads=threads)


@pytest.mark.parametrize(("name", "kind", "rank"), CASES)
def test_a_split_call_equals_the_serial_call(
    name: str, kind: str, rank: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "THRESHOLD", 1)
    rng = np.random.default_rng(abs(hash((name, kind, rank))) % 2**32)
    case = random_case(
        name, rng, rank=rank, kind=kind, weighted=True, masked=True, max_elements=400
    )
    serial = run(case, 1, monkeypatch)
    submitted: list[object] = []
    real_pool = parallel.pool

    def counting_pool(threads: int):
        executor = real_pool(threads)

        class Spy:
            def submit(self, *args, **kwargs):
                submitted.append(args)
                return executor.submit(*args, **kwargs)

        return Spy()

    monkeypatch.setattr(parallel, "pool", counting_pool)
    split = run(case, 3, monkeypatch)
    spec = REGISTRY[name]
    params = spec.params(**case.params)
    batch = spec.contract.prepare(
        Inputs(case.predictions, case.targets, case.sample_weight, case.mask), params
    )
    periodic = any(isinstance(a, np.ndarray) and a.size > 1 for a in spec.kernel_arguments(params))
    if batch.kernel_arrays[0].shape[0] >= 3 and not periodic:
        # Two helpers beside the calling thread, taking chunks in turn with it.
        assert len(submitted) == 2, "a call of 3 units or more must be split"
    np.testing.assert_array_equal(split.gradient, serial.gradient)
    np.testing.assert_array_equal(split.per_sample, serial.per_sample)
    assert split.cost == serial.cost
    assert split.sum == serial.sum


def test_small_calls_stay_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def kernel(predictions, targets, scale, losses, gradient):
        calls.append(predictions.size)
        losses[:] = 0.0

    predictions = np.zeros(10)
    arguments = (predictions, predictions)
    parallel.run(kernel, arguments, np.ones(10), np.empty(10), np.empty(0), (), threads=4)
    assert calls == [10]
    monkeypatch.setattr(parallel, "THRESHOLD", 1)
    calls.clear()
    parallel.run(kernel, arguments, np.ones(10), np.empty(10), np.empty(0), (), threads=4)
    assert sorted(calls) == [1] * 10  # up to four chunks per thread: one unit each here
    calls.clear()
    periodic = (np.ones(5),)  # an array argument indexed by global position: not split
    parallel.run(
        lambda *a: calls.append(a[0].size),
        arguments,
        np.ones(10),
        np.empty(10),
        np.empty(0),
        periodic,
        threads=4,
    )
    assert calls == [10]


@pytest.mark.parametrize("with_gradient", [False, True])
def test_the_kernel_never_gets_one_buffer_for_two_outputs_or_inputs(
    with_gradient: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's kernel call has no two arrays on the same buffer. Without a gradient, the
    empty ``scale`` and ``gradient`` were once the same array, and LLVM then ran every kernel's
    loop unvectorised (its runtime check that the arrays a loop writes do not overlap those it
    reads fails for one buffer passed twice): log_cosh on 20,000 entries took 630 us, 116 us
    with two arrays (bench: python -m bench.container)."""
    seen: list[tuple[np.ndarray, ...]] = []
    original = parallel.run

    def recording(kernel, arrays, scale, losses, gradient, *rest, **options):
        seen.append((*arrays, scale, losses, gradient))
        return original(kernel, arrays, scale, losses, gradient, *rest, **options)

    monkeypatch.setattr(parallel, "run", recording)
    spec = REGISTRY["log_cosh"]
    predictions = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    engine.compute(spec, Inputs(predictions, predictions[::-1]), spec.params(), "mean",
                   with_gradient=with_gradient)  # fmt: skip
    (arrays,) = seen
    addresses = [
        array.__array_interface__["data"][0] for array in arrays if isinstance(array, np.ndarray)
    ]
    # With the gradient and no weights the scale is one number (not an array) for every element.
    assert len(addresses) == (4 if with_gradient else 5), arrays
    assert len(set(addresses)) == len(addresses), addresses


def test_a_helper_that_starts_late_leaves_its_share_to_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chunks of a split call go to whichever thread asks next (the calling one too), so a
    helper thread that has not started yet (woken from idle, it once had not when the other
    thread had done both halves) never holds the call up: here the helper runs only when its
    result is asked for, and finds every chunk taken."""
    taken_by: list[str] = []

    def kernel(predictions, targets, scale, losses, gradient):
        taken_by.append(threading.current_thread().name)
        losses[:] = predictions + targets

    class Late:
        """A pool whose jobs run only when their result is asked for."""

        def submit(self, function, *args):
            class Deferred:
                def result(self):
                    return function(*args)

            return Deferred()

    monkeypatch.setattr(parallel, "pool", lambda threads: Late())
    monkeypatch.setattr(parallel, "THRESHOLD", 1)
    predictions, targets = np.arange(40.0), np.ones(40)
    losses = np.zeros(40)
    parallel.run(kernel, (predictions, targets), 1.0, losses, np.empty(0), (), threads=2)
    np.testing.assert_array_equal(losses, predictions + 1.0)
    assert taken_by == [threading.current_thread().name] * 2 * parallel.SHARES
