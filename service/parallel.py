"""Large kernel calls on every core: the same serial kernel, on contiguous chunks, in threads.

Every kernel is compiled ``nogil`` and every array it receives has a leading axis of *units*
(entries, samples, tokens, boxes) with the other arrays' leading axes a whole multiple of it:
``predictions[U, ...]``, ``labels[U, ...]``, ``losses[U * r]``, ``scale[U * r]``,
``gradient[U * r']``. Units are independent, so a call over units ``[0, U)`` equals the calls
over ``[a, b)`` chunks, each on slices (views, no copies) of every array. Small calls (under
``THRESHOLD`` prediction entries) stay serial: a thread hand-off costs more than they do.

This reaches both cores without numba's parallel threading layers: ``workqueue`` aborts the
process when two threads run parallel kernels at once, and ``omp`` / ``tbb`` would add a native
dependency to the slim image; here kernels stay serial, cached and thread-safe, and the pool
is shared by all requests of the process, sized so workers x threads <= cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

#: Below this many prediction entries a call runs serially (a split costs a thread hand-off,
#: tens of microseconds). Read at every call, so tests may lower it.
THRESHOLD = 1 << 17


@lru_cache(maxsize=4)
def pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kernel")


def default_threads(workers: int) -> int:
    """Kernel threads per worker process so that workers x threads <= cores."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def run(
    kernel: Callable[..., None],
    arrays: Sequence[np.ndarray],
    scale: np.ndarray,
    losses: np.ndarray,
    gradient: np.ndarray,
    arguments: Sequence[Any],
    threads: int,
) -> None:
    """``kernel(*arrays, scale, losses, gradient, *arguments)``, split over ``threads``."""
    units = arrays[0].shape[0]
    # An array among the arguments (bce's per-entry pos_weight) is indexed by global position:
    # such a call is not split.
    periodic = any(isinstance(argument, np.ndarray) and argument.size > 1 for argument in arguments)
    work = arrays[0].size  # the predictions' entries: what every kernel reads once at least
    if threads <= 1 or work < THRESHOLD or units < threads or periodic:
        kernel(*arrays, scale, losses, gradient, *arguments)
        return
    bounds = np.linspace(0, units, threads + 1).astype(np.int64)
    chunks = list(pairwise(bounds))

    def part(array: np.ndarray, start: int, stop: int) -> np.ndarray:
        if array.size == 0:  # "no gradient": stays empty in every chunk
            return array
        per_unit = array.shape[0] // units
        return array[start * per_unit : stop * per_unit]

    def call(start: int, stop: int) -> None:
        kernel(
            *(part(array, start, stop) for array in arrays),
            part(scale, start, stop),
            part(losses, start, stop),
            part(gradient, start, stop),
            *arguments,
        )

    futures = [pool(threads).submit(call, start, stop) for start, stop in chunks]
    for future in futures:
        future.result()
