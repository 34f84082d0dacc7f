"""The compute lanes: fixed sets of threads that run jobs off the event loop.

Results come back to the event loop as ``(ok, value)`` pairs, never as exceptions set on
futures, and errors lose their tracebacks (an unexpected one keeps it as text, :data:`TRACE`),
so nothing a request touched stays referenced by a cycle only the garbage collector breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from service.compute.deadline import Deadline
from service.ops.memory import return_freed_memory
from service.validation.errors import ServiceError

T = TypeVar("T")
LIGHT_NICE, HEAVY_NICE = 10, 15
TRIM_AFTER = 0.5  # s: idle time of the heavy lane before freed memory goes back to the system


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
        # checked for finiteness (service.validation.finite).
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
            del loop, future, work, deadline
            worked = True
            if not pending:
                oldest = time.perf_counter()
            pending.append(slot)
            del slot
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
