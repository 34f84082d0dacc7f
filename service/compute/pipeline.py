"""The scoring requests, end to end: body in, bytes out, every CPU step on a compute thread.

``POST /v1/losses/{name}``, ``POST /v1/evaluate`` and ``POST /v2/models/{name}/infer`` share one
pipeline:

1. on the event loop: the media type (``/v1``), then the body, read within its limits
   (:mod:`service.api.body`: size, time, the worker's byte budget charged with the bytes that arrive);
2. admission to compute (``LOSS_SERVICE_MAX_IN_FLIGHT``, a 503 past it) and a deadline
   (:mod:`service.compute.deadline`);
3. on a compute lane: decode and validate into a :class:`~service.compute.work.Plan` whose work is
   estimated (a 413 past ``LOSS_SERVICE_MAX_WORK_SECONDS``), then compute and encode it, on the
   same thread when it is light, else in the heavy lane. Bodies that take long to decode start
   in the heavy lane. The two lanes are separate sets of threads, so a cheap request never waits
   behind an expensive one; the heavy lane's threads run at a lower priority.

Every outcome is a :class:`Reply`; errors are problem+json (``/v2`` adds the protocol's ``error``
member). A request's body, arrays and outputs are freed when its answer is ready: jobs hand back
plain values, exceptions come back without their tracebacks (:class:`ComputePool`), so nothing a
request touched stays referenced by a cycle that only the garbage collector would break.
:mod:`service.api.http` calls this directly; the FastAPI operations that document these routes call
it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
import orjson

from service.api import codec
from service.api.body import (
    Admission,
    BodyLimits,
    Holding,
    Progress,
    Receive,
    read_body,
    watch_disconnect,
)
from service.api.v1 import evaluate
from service.api.v1 import losses as loss_request
from service.api.v2 import protocol
from service.api.v2.errors import protocol_problem
from service.api.v2.transport import HEADER_LENGTH
from service.compute import work
from service.compute.deadline import Deadline
from service.compute.engine import compute
from service.losses.registry import LossSpec
from service.ops import prometheus as monitoring
from service.ops.memory import return_freed_memory
from service.ops.settings import Settings
from service.validation.errors import PROBLEM_MEDIA_TYPE, ServiceError

JSON = "application/json"
BINARY = "application/octet-stream"
T = TypeVar("T")
LIGHT_NICE, HEAVY_NICE = 10, 15
TRIM_AFTER = 0.5  # s: idle time of the heavy lane before freed memory goes back to the system
logger = logging.getLogger("service")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    media_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


def problem_reply(error: ServiceError, *, inference: bool = False) -> Reply:
    """problem+json; for ``/v2`` with the protocol's status and ``error`` member."""
    body = protocol_problem(error) if inference else error.problem()
    return Reply(
        body["status"],
        orjson.dumps(body),
        PROBLEM_MEDIA_TYPE,
        tuple((error.headers or {}).items()),
    )


#: Attribute of an unexpected exception from a compute thread: its traceback, as text.
TRACE = "compute_trace"


def _detached(error: BaseException) -> BaseException:
    """The error without its traceback or chained exceptions: those hold the frames of the
    failed work (its body, document and arrays) in a cycle with the exception itself. An
    unexpected error keeps its trace as text, for the log (:data:`TRACE`)."""
    if not isinstance(error, ServiceError):
        setattr(error, TRACE, "".join(traceback.format_exception(error)))
    error.__traceback__ = None
    error.__context__ = None
    error.__cause__ = None
    return error


Outcome = tuple[bool, Any]  # (True, value) or (False, a detached error)
Job = tuple[asyncio.AbstractEventLoop, asyncio.Future, Callable[[], Any], Deadline | None]


def _execute(work: Callable[[], Any], deadline: Deadline | None) -> Outcome:
    """Run ``work`` under ``deadline``; never raises, never keeps a traceback."""
    token = deadline.bind_thread() if deadline is not None else None
    try:
        return True, work()
    except BaseException as error:  # the caller raises it; this thread never dies
        return False, _detached(error)
    finally:
        if token is not None:
            deadline.unbind_thread(token)  # type: ignore[union-attr]


class ComputePool:
    """A fixed set of compute threads that hand results back to the event loop in batches.

    A plain executor costs every request a thread wake-up and an event-loop wake-up: measured
    here ~90 us of CPU per request, more than validating and scoring a small batch. These
    threads take the next job without sleeping while jobs are queued, and post the results
    they have to the loop in one call once the queue is empty or the oldest waited 1 ms, so
    under load those wake-ups are shared by many requests. No job is taken ahead of time, so
    an idle thread always gets the next one; threads run at ``nice`` (:func:`lower_priority`)
    so the event loop keeps its core.

    Results travel as ``(ok, value)`` pairs, never as exceptions set on futures: an exception
    on a future keeps its traceback, whose frames hold the request's data, in a cycle with the
    awaiting coroutine. A thread drops its references to a job as soon as it has run it.
    """

    FLUSH_AFTER = 0.001  # s: the longest a finished result waits for the batch

    def __init__(
        self, threads: int, nice: int = LIGHT_NICE, name: str = "compute", trim: bool = False
    ) -> None:
        self.threads = threads
        self.nice = nice
        self.name = name
        self.trim = trim  # give freed memory back to the system when out of work
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._workers:
                return
            self._workers = [
                threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True)
                for i in range(self.threads)
            ]
            for worker in self._workers:
                worker.start()

    async def run(self, work: Callable[[], T], deadline: Deadline | None = None) -> T:
        if not self._workers:
            self._start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, work, deadline))
        del work
        ok, value = await future
        del future
        if ok:
            return value
        try:
            raise value
        finally:
            del value  # the raised exception's traceback holds this frame: no cycle

    def close(self) -> None:
        """Stop the threads once the queued jobs are done (a later ``run`` starts new ones)."""
        with self._lock:
            workers, self._workers = self._workers, []
        for _ in workers:
            self._jobs.put(None)

    def _next_job(self, worked: bool) -> Job | None:
        """Wait for the next job. With ``trim``, after work, a lane that stays idle for
        :data:`TRIM_AFTER` seconds gives freed memory back to the system first (not at once:
        requests back to back would pay the page faults of fresh memory every time)."""
        if worked and self.trim:
            try:
                return self._jobs.get(timeout=TRIM_AFTER)
            except queue.Empty:
                return_freed_memory()
        return self._jobs.get()

    def _work(self) -> None:
        lower_priority(self.nice)
        # Overflow and NaN are results to check, never warnings: every input and result is
        # checked for finiteness (service.validation.finite), and a sum of finite values may overflow.
        np.seterr(over="ignore", invalid="ignore", divide="ignore")
        pending: list[list] = []
        oldest = 0.0
        worked = False
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                _deliver_all(pending)
                pending = []
                job = self._next_job(worked)
                worked = False
            if job is None:
                _deliver_all(pending)
                return
            loop, future, work, deadline = job
            job = None
            # The outcome goes straight into a slot that the event loop empties when it settles
            # the future: from then on only the awaiting request holds it, however long this
            # thread takes to drop the slot (an answer is freed when it is sent, not later).
            slot = [loop, future, _execute(work, deadline)]
            loop = future = work = deadline = None
            worked = True
            if not pending:
                oldest = time.perf_counter()
            pending.append(slot)
            slot = None
            if time.perf_counter() - oldest > self.FLUSH_AFTER:
                _deliver_all(pending)
                pending = []


def _deliver_all(pending: list[list]) -> None:
    """One ``call_soon_threadsafe`` per event loop for all these results (slots of
    ``[loop, future, outcome]``)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[list]] = {}
    for slot in pending:
        by_loop.setdefault(slot[0], []).append(slot)
    for loop, batch in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_settle, batch)


def _settle(batch: list[list]) -> None:
    for slot in batch:
        _, future, outcome = slot
        slot.clear()
        if not future.cancelled():
            future.set_result(outcome)


def lower_priority(nice: int) -> None:
    """Yield the CPU to the event loop: compute threads run at nice +10 (the heavy lane at +15),
    so under saturation health checks and new connections still get a core, and cheap requests
    get more of it than expensive ones."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class Scoring:
    """One worker's scoring pipeline: settings, the two compute lanes and the admission bounds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.light = ComputePool(settings.compute_threads, LIGHT_NICE, "compute")
        self.heavy = ComputePool(settings.heavy_threads, HEAVY_NICE, "heavy", trim=True)
        self.admission = Admission(
            settings.max_in_flight, settings.max_in_flight_bytes, settings.retry_after_seconds
        )
        self.body_limits = BodyLimits(
            settings.max_body_bytes,
            settings.body_timeout_seconds,
            settings.body_min_bytes_per_second,
        )
        self.heavy_body_bytes = work.heavy_body_bytes(settings.heavy_work_seconds)
        # What a job may do, by the lane it starts in (a plan runs where it was prepared up to
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
        self.count_in_flight = not monitoring.watch_in_flight(lambda: admission.requests)

    def close(self) -> None:
        self.light.close()
        self.heavy.close()

    async def _compute(self, job: Callable[[], Any], heavy: bool, receive: Receive | None) -> Any:
        """``job`` in its lane under a fresh deadline; a plan it hands back runs in the heavy
        lane. While work may be long (the heavy lane), a client that leaves cancels it."""
        self.admission.enter()
        if self.count_in_flight:
            monitoring.IN_FLIGHT.inc()
        deadline = Deadline(self.settings.compute_timeout_seconds)
        watcher = None
        try:
            if heavy and receive is not None:
                watcher = watch_disconnect(receive, deadline.cancel)
            outcome = await (self.heavy if heavy else self.light).run(job, deadline)
            del job
            if isinstance(outcome, work.Plan):
                if watcher is None and receive is not None:
                    watcher = watch_disconnect(receive, deadline.cancel)
                outcome = await self.heavy.run(outcome.run, deadline)
            return outcome
        finally:
            if watcher is not None:
                watcher.cancel()
            self.admission.leave()
            if self.count_in_flight:
                monitoring.IN_FLIGHT.dec()

    async def _read(
        self,
        headers: Mapping[str, str],
        receive: Receive,
        holding: Holding,
        progress: Progress | None,
    ) -> bytes | bytearray:
        declared = headers.get("content-length")
        return await read_body(receive, declared, self.body_limits, holding, progress or Progress())

    async def loss(
        self,
        spec: LossSpec,
        headers: Mapping[str, str],
        receive: Receive,
        progress: Progress | None = None,
    ) -> Reply:
        return await self._json(partial(prepare_loss, spec), headers, receive, progress)

    async def evaluate(
        self, headers: Mapping[str, str], receive: Receive, progress: Progress | None = None
    ) -> Reply:
        return await self._json(evaluate.prepare, headers, receive, progress)

    async def _json(
        self,
        prepare: Prepare,
        headers: Mapping[str, str],
        receive: Receive,
        progress: Progress | None,
    ) -> Reply:
        holding = Holding(self.admission)
        try:
            codec.check_json_content_type(headers.get("content-type"))
            body = await self._read(headers, receive, holding, progress)
            heavy = len(body) >= self.heavy_body_bytes
            job = partial(decode_and_run, prepare, [body], self.limits[heavy])
            del body  # the job takes it: freed once decoded
            return Reply(200, await self._compute(job, heavy, receive))
        except ServiceError as error:
            return problem_reply(error)
        finally:
            holding.release()

    async def infer(
        self,
        model: Callable[[], LossSpec],
        headers: Mapping[str, str],
        receive: Receive,
        progress: Progress | None = None,
    ) -> Reply:
        """``/v2`` inference; ``model`` resolves the loss (404 for unknown names/versions)."""
        holding = Holding(self.admission)
        try:
            spec = model()
            body = await self._read(headers, receive, holding, progress)
            encoding = headers.get("content-encoding")
            # A compressed body's decoded size is unknown until inflated: decode it in the heavy lane.
            compressed = (encoding or "identity").strip().lower() != "identity"
            heavy = len(body) >= self.heavy_body_bytes or compressed
            job = partial(
                protocol.infer_job,
                spec,
                [body],
                encoding,
                headers.get(HEADER_LENGTH.lower()),
                self.settings.max_body_bytes,
                self.limits[heavy],
                holding.reserve,
            )
            del body
            response = await self._compute(job, heavy, receive)
        except ServiceError as error:
            return problem_reply(error, inference=True)
        finally:
            holding.release()
        if response.header_length is None:
            return Reply(200, response.content)
        return Reply(200, response.content, BINARY, ((HEADER_LENGTH, str(response.header_length)),))


Prepare = Callable[[bytes | bytearray, int], work.Plan]


def prepare_loss(spec: LossSpec, body: bytes | bytearray, max_elements: int) -> work.Plan:
    """Read and validate one loss's request, and estimate its work."""
    closed = {"params": (spec.params.model_fields, ())}
    model = loss_request.request_model(spec)
    document = codec.read_request(body, model, codec.TENSOR_ARRAYS, closed)
    booleans = codec.may_hold_booleans(body)
    request = loss_request.parse(spec, document, max_elements, check_booleans=booleans)
    del document
    estimate = work.of_loss(
        spec, request.inputs, request.params, gradient="gradient" in request.include
    )
    return work.Plan(estimate, partial(run_loss, spec, request))


def run_loss(spec: LossSpec, request: loss_request.ParsedRequest) -> bytes:
    result = compute(
        spec,
        request.inputs,
        request.params,
        request.reduction,
        with_gradient="gradient" in request.include,
    )
    return codec.encode(loss_request.render(result, request.include))


def decode_and_run(prepare: Prepare, holder: list, limits: work.Limits) -> Any:
    """The CPU work of one JSON request: read, validate, estimate, then compute and encode
    (here when light enough, else the plan goes back for the heavy lane). ``holder`` holds the
    body, taken out so that it is freed as soon as its arrays are read."""
    plan = prepare(holder.pop(), limits.max_elements)
    return limits.admit(plan)
