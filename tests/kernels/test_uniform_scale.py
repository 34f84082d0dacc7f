"""A uniform gradient scale passed as one number gives the same bits as the same scale written
out as an array, for every loss (service/kernels/jit.py: ``scale_at``).

The engine passes one number when no element is weighted (1 / W under ``mean``, 1 under
``sum``); numba compiles each kernel for both forms. Every loss's example, and a larger random
batch for the elementwise ones, runs through its kernel both ways.
"""

from __future__ import annotations

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from service.api.v1.losses import parse
from service.losses.registry import REGISTRY


def kernel_outputs(name: str, scale_of: object) -> tuple[np.ndarray, np.ndarray]:
    spec = REGISTRY[name]
    request = parse(spec, dict(spec.example), max_elements=10**6)
    batch = spec.contract.prepare(request.inputs, request.params)
    count = batch.n_samples * batch.elements_per_sample
    losses, gradient = np.empty(count), np.empty(batch.gradient_shape)
    scale = scale_of(count)
    arguments = spec.kernel_arguments(request.params)
    spec.kernel(*batch.kernel_arrays, scale, losses, gradient.reshape(-1), *arguments)
    return losses, gradient


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("value", [1.0, 1.0 / 3.0, 2.0**-1070])
def test_one_number_is_the_array_of_it(name: str, value: float) -> None:
    losses, gradient = kernel_outputs(name, lambda count: value)
    array_losses, array_gradient = kernel_outputs(name, lambda count: np.full(count, value))
    assert losses.tobytes() == array_losses.tobytes()
    assert gradient.tobytes() == array_gradient.tobytes()
    assert np.any(gradient != 0.0) or value == 2.0**-1070, "a gradient that cannot tell"


@pytest.mark.compiled  # 100,003 entries: too slow as plain Python (the kernels-as-python run)
@pytest.mark.parametrize("name", ["mse", "log_cosh", "msle", "binary_cross_entropy", "huber"])
def test_one_number_on_a_large_elementwise_batch(name: str) -> None:
    spec = REGISTRY[name]
    rng = np.random.default_rng(5)
    predictions = rng.uniform(0.01, 0.99, 100_003)
    targets = rng.uniform(0.0, 1.0, 100_003).round()
    arguments = spec.kernel_arguments(spec.params())
    outputs = []
    for scale in (1.0 / 7.0, np.full(predictions.size, 1.0 / 7.0)):
        losses, gradient = np.empty(predictions.size), np.empty(predictions.size)
        spec.kernel(predictions, targets, scale, losses, gradient, *arguments)
        outputs.append((losses.tobytes(), gradient.tobytes()))
    assert outputs[0] == outputs[1]
