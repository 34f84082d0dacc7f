"""Work estimates against measured times: the numbers behind ``LossSpec.entry_seconds``.

    python -m bench.work [--repeats 5]

For every registered loss (and a few custom expressions) at about 1e6 prediction entries, one
kernel thread: the measured time of the engine's whole computation (:func:`service.compute.engine.compute`
with the gradient) plus the JSON encoding of its outputs, against :func:`service.compute.work.of_loss`'s
estimate. ``measured ns/entry`` is what ``entry_seconds`` should be near; ``estimate / measured``
should stay >= ~1 (estimates err on the expensive side) and below ~5.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import service.losses  # noqa: F401  (registers every loss)
from bench.kernels import BENCH_PARAMS, make_inputs
from bench.structured import cases
from service.api import codec
from service.api.v1.losses import render
from service.compute import engine, work
from service.losses.registry import REGISTRY
from service.validation.contracts import Inputs

CUSTOM = [
    ("(p - y)**2", {}),
    ("softplus(-p*y) + 0.1*square(p)", {}),
    ("sin(p*k) + cos(p*k)", {"k": 1e299}),
    ("(p - y)**2 * where(y > 0.5, 2, 1)", {}),
    ("p**y + exp(p) / (1 + abs(y))", {}),
]


def workloads(rng: np.random.Generator):
    for spec in REGISTRY.values():
        if spec.family in ("regression", "binary", "categorical"):
            predictions, targets = make_inputs(spec, 1_000_000, rng)
            yield spec.name, spec, predictions, targets, BENCH_PARAMS.get(spec.name, {})
    for name, predictions, targets, params, _numpy in cases(rng):
        yield name, REGISTRY[name], predictions, targets, params
    predictions, targets = rng.uniform(0.1, 2, (1000, 1000)), rng.uniform(0.1, 2, (1000, 1000))
    for expression, constants in CUSTOM:
        params = {"expression": expression, "constants": constants}
        yield f"custom {expression}", REGISTRY["custom"], predictions, targets, params


def best(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(
        f"{'workload':44s} {'entries':>10s} {'measured ns/entry':>18s} {'estimate/measured':>18s}"
    )
    for label, spec, predictions, targets, raw_params in workloads(rng):
        inputs = Inputs(np.ascontiguousarray(predictions), np.ascontiguousarray(targets))
        params = spec.params.model_validate(raw_params)

        def run(spec=spec, inputs=inputs, params=params) -> object:
            result = engine.compute(spec, inputs, params, "mean", with_gradient=True)
            return codec.encode(render(result, frozenset({"cost", "per_sample", "gradient"})))

        seconds = best(run, args.repeats)
        estimate = work.of_loss(spec, inputs, params)
        entries = predictions.size
        print(
            f"{label[:44]:44s} {entries:>10,d} {seconds / entries * 1e9:>18.2f} "
            f"{estimate.seconds / seconds:>18.2f}"
        )


if __name__ == "__main__":
    main()
