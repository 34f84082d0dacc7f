"""The scoring pipeline: one path for every protocol, from a decoded request to its answer.

A protocol adapter (``/v1`` JSON, ``/v2`` REST, ``/v2`` gRPC) hands the pipeline a *decode*
function and the request's raw message; the pipeline does the rest:

1. admission (:class:`~service.compute.admission.Admission`: requests computing per worker)
   and a deadline (:mod:`service.compute.deadline`), cancelled when the client leaves;
2. on a compute lane (:mod:`service.compute.lanes`): ``decode(message, max_elements,
   reserve)`` turns the message into a :class:`Call` (what to compute, and how the adapter
   answers it), whose work is estimated (a 413 past ``LOSS_SERVICE_MAX_WORK_SECONDS``);
3. the call is executed and answered on the same thread when it is light, else in the heavy
   lane. The two lanes are separate sets of threads, so a cheap request never waits behind an
   expensive one; the heavy lane's threads run at a lower priority; each lane gives freed
   memory back once idle (:mod:`service.ops.memory`).

Errors are :class:`~service.validation.errors.ServiceError` s raised to the adapter, which
renders them in its protocol. The message is handed over in a list that the job empties, so a
body is freed as soon as it is decoded.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from service.compute import work
from service.compute.admission import Admission, Holding
from service.compute.deadline import Deadline
from service.compute.lanes import HEAVY_NICE, LIGHT_NICE, ComputePool
from service.ops import prometheus
from service.ops.settings import Settings


class Computation(Protocol):
    """What a call computes: a :class:`~service.compute.engine.LossCall` or an
    :class:`~service.compute.evaluation.Evaluation`."""

    def estimate(self) -> work.Estimate: ...

    def execute(self, threads: int, timings: list[tuple[str, float]] | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class Call:
    """The pipeline's request: the computation, and the adapter's function that turns its
    result into the protocol's answer (run on the compute thread: encoding is CPU work)."""

    computation: Computation
    answer: Callable[[Any], Any]


#: ``decode(message, max_elements, reserve)``: an adapter's message to a :class:`Call`;
#: ``reserve(n)`` charges n more bytes (an inflated body) to the request's holding.
Decode = Callable[[Any, int, Callable[[int], None]], Call]
#: Called with the deadline's ``cancel``; returns a handle whose ``cancel()`` stops watching.
Watch = Callable[[Callable[[], None]], Any]


class Pipeline:
    """One worker's scoring: admission bounds, the two compute lanes and the job limits."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kernel_threads = settings.kernel_threads
        self.light = ComputePool(settings.compute_threads, LIGHT_NICE, "compute", trim=True)
        self.heavy = ComputePool(settings.heavy_threads, HEAVY_NICE, "heavy", trim=True)
        self.admission = Admission(
            settings.max_in_flight, settings.max_in_flight_bytes, settings.retry_after_seconds
        )
        #: Messages at least this large are decoded in the heavy lane.
        self.heavy_message_bytes = work.heavy_body_bytes(settings.heavy_work_seconds)
        # What a job may do, by the lane it starts in (a call runs where it was decoded up to
        # heavy_work_seconds; in the heavy lane, always).
        self.limits = {
            heavy: work.Limits(
                max_elements=settings.max_elements,
                max_seconds=settings.max_work_seconds,
                inline_seconds=math.inf if heavy else settings.heavy_work_seconds,
            )
            for heavy in (False, True)
        }
        admission = self.admission
        self.count_in_flight = not prometheus.watch_in_flight(lambda: admission.requests)

    def holding(self) -> Holding:
        """The bytes one request holds in the worker's budget (release it when answered)."""
        return Holding(self.admission)

    def close(self) -> None:
        self.light.close()
        self.heavy.close()

    async def score(
        self,
        decode: Decode,
        message: Any,
        holding: Holding,
        *,
        heavy: bool,
        watch: Watch | None = None,
    ) -> Any:
        """The answer to ``message``: decoded, estimated, computed and answered on the compute
        lanes under a fresh deadline. ``heavy`` starts it in the heavy lane (a large or
        compressed message); while it may run long there, ``watch`` cancels it when the client
        leaves."""
        limits = self.limits[heavy]
        job = partial(decode_and_run, decode, [message], limits, holding.reserve, self)
        del message  # the job holds it: freed once decoded
        self.admission.enter()
        if self.count_in_flight:
            prometheus.IN_FLIGHT.inc()
        deadline = Deadline(self.settings.compute_timeout_seconds)
        watcher = None
        try:
            if heavy and watch is not None:
                watcher = watch(deadline.cancel)
            outcome = await (self.heavy if heavy else self.light).run(job, deadline)
            del job
            if isinstance(outcome, work.Plan):
                if watcher is None and watch is not None:
                    watcher = watch(deadline.cancel)
                outcome = await self.heavy.run(outcome.run, deadline)
            return outcome
        except asyncio.CancelledError:
            # The awaiting task was cancelled (a gRPC call the client cancelled, a server
            # stopping): the work stops at its next checkpoint.
            deadline.cancel()
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
            self.admission.leave()
            if self.count_in_flight:
                prometheus.IN_FLIGHT.dec()

    def run(self, call: Call) -> Any:
        """Execute ``call`` here and answer it (on a compute thread); the kernels' times go to
        the metrics."""
        timings: list[tuple[str, float]] = []
        result = call.computation.execute(self.kernel_threads, timings)
        for loss, seconds in timings:
            prometheus.kernel_series(loss).observe(seconds)
        return call.answer(result)


def decode_and_run(
    decode: Decode,
    holder: list,
    limits: work.Limits,
    reserve: Callable[[int], None],
    pipeline: Pipeline,
) -> Any:
    """The CPU work of one request: decode, estimate, then execute and answer here when light
    enough (else the plan goes back for the heavy lane)."""
    call = decode(holder.pop(), limits.max_elements, reserve)
    plan = work.Plan(call.computation.estimate(), partial(pipeline.run, call))
    del call
    return limits.admit(plan)
