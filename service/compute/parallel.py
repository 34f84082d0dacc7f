"""Large kernel calls on every core: the same serial kernel, on contiguous chunks, in threads.

Every kernel is compiled ``nogil`` and every array it receives has a leading axis of *units*
(entries, samples, tokens, boxes) with the other arrays' leading axes a whole multiple of it:
``predictions[U, ...]``, ``labels[U, ...]``, ``losses[U * r]``, ``scale[U * r]``,
``gradient[U * r']`` (``scale`` may also be one number for every element). Units are
independent, so a call over units ``[0, U)`` equals the calls over ``[a, b)`` chunks, each on
slices (views, no copies) of every array. Small calls (under ``THRESHOLD`` prediction
entries) stay serial: a thread hand-off costs more than they do. A split call runs in the
calling thread and ``threads - 1`` helpers of a pool, which take its chunks in turn.

This reaches both cores without numba's parallel threading layers: ``workqueue`` aborts the
process when two threads run parallel kernels at once, and ``omp`` / ``tbb`` would add a native
dependency to the slim image; here kernels stay serial, cached and thread-safe, and the pool
is shared by all requests of the process, sized so workers x threads <= cores.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

from service.compute.deadline import CHUNK_SECONDS, Deadline

#: Below this many prediction entries a call runs serially (a split costs a thread hand-off,
#: tens of microseconds). Read at every call, so tests may lower it.
THRESHOLD = 1 << 17
#: A split call is cut into this many chunks per thread, which the threads take in turn (the
#: calling one too): a thread that starts late leaves its share to the others. Handed whole
#: halves, a call in the service often ran at one thread's speed: its second thread, woken
#: from idle, had not started when the first had done both halves (log_cosh on 1e6 entries,
#: kernel metric, 4.7 ms against 2.4 ms in-process).
SHARES = 4


@lru_cache(maxsize=4)
def pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kernel")


def run(
    kernel: Callable[..., None],
    arrays: Sequence[np.ndarray],
    scale: np.ndarray | float,
    losses: np.ndarray,
    gradient: np.ndarray,
    arguments: Sequence[Any],
    threads: int,
    seconds: float = 0.0,
    deadline: Deadline | None = None,
) -> None:
    """``kernel(*arrays, scale, losses, gradient, *arguments)``, split over ``threads``.

    With a ``deadline``, a call estimated at ``seconds`` also runs in chunks of about
    :data:`service.compute.deadline.CHUNK_SECONDS` each, and stops between two chunks once the deadline
    has passed or was cancelled (raising what :meth:`Deadline.check` raises): an expensive call
    never outlives its deadline or its client by more than a chunk.
    """
    units = arrays[0].shape[0]
    # An array among the kernel's options may be indexed by global position (a weight per entry
    # of the last axis, say): such a call is not split.
    periodic = any(isinstance(argument, np.ndarray) and argument.size > 1 for argument in arguments)
    work = arrays[0].size  # the predictions' entries: what every kernel reads once at least
    split = threads > 1 and work >= THRESHOLD and units >= threads and not periodic
    workers = threads if split else 1
    pieces = math.ceil(seconds / CHUNK_SECONDS) if deadline is not None and not periodic else 1
    chunks = min(units, max(workers * SHARES if workers > 1 else 1, pieces))
    if chunks <= 1:
        kernel(*arrays, scale, losses, gradient, *arguments)
        return
    bounds = np.linspace(0, units, chunks + 1).astype(np.int64)
    call = (kernel, arrays, scale, losses, gradient, arguments, units, deadline)
    ranges = list(pairwise(bounds.tolist()))
    taken = itertools.count()  # next(): one C call under the GIL, so each range goes once
    helpers = [
        pool(workers - 1).submit(_take_chunks, call, ranges, taken) for _ in range(workers - 1)
    ]
    _take_chunks(call, ranges, taken)  # the calling thread works too
    for helper in helpers:
        helper.result()
    if deadline is not None:
        deadline.check()


def _take_chunks(call: tuple, ranges: Sequence[tuple[int, int]], taken: Iterator[int]) -> None:
    """The kernel on the next range not yet taken, in turn, until none is left or the deadline
    stops it."""
    kernel, arrays, scale, losses, gradient, arguments, units, deadline = call
    for index in taken:
        if index >= len(ranges) or (deadline is not None and deadline.stopped()):
            return
        start, stop = ranges[index]
        kernel(
            *(_part(array, units, start, stop) for array in arrays),
            _part(scale, units, start, stop),
            _part(losses, units, start, stop),
            _part(gradient, units, start, stop),
            *arguments,
        )


def _part(array: np.ndarray | float, units: int, start: int, stop: int) -> np.ndarray | float:
    """Units ``[start, stop)`` of an array whose leading axis is a whole multiple of units."""
    if isinstance(array, float) or array.size == 0:  # one scale for all; "no gradient"
        return array
    per_unit = array.shape[0] // units
    return array[start * per_unit : stop * per_unit]
