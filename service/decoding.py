"""Large JSON bodies are decoded in a helper process, so the parse never holds the worker's GIL.

``orjson.loads`` of a 1e6-element body (39 MB) is one ~200 ms C call that holds the GIL, and
turning its lists into arrays another ~40 ms: long enough to stall the event loop (``/healthz``
included) however the work is threaded. Bodies of at least ``LOSS_SERVICE_DECODE_OFFLOAD_BYTES``
are therefore parsed by a helper process (one per worker, started at warm-up), which also
converts the tensor lists (``predictions``, ``targets``, ``sample_weight``, ``mask`` and the
``/v2`` inputs' ``data``) to NumPy arrays. Body and arrays travel through spool files in
``/dev/shm`` (memory; the temp directory where there is none), whose reads and writes release
the GIL: a few milliseconds for the worker instead of a quarter of a second of parsing.

The helper only takes the fast path. A body it cannot decode cleanly (invalid JSON, booleans or
non-numbers inside an array, more elements than ``LOSS_SERVICE_MAX_ELEMENTS``) comes back as
``None``, and the worker decodes it itself, so every error is raised, worded and bounded
exactly as for a small body.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any

import numpy as np

from service import codec

logger = logging.getLogger("service")
TENSOR_FIELDS = ("predictions", "targets", "sample_weight", "mask")
SMALL = 1024  # lists shorter than this are cheaper to leave to the worker
ARRAY = "loss-service-array"
BACKGROUND_NICE = 10
ALWAYS = 64 << 20  # bytes: the helper decodes these even for a lone request


def _tensor_slots(document: dict[str, Any]) -> list[tuple[dict, str]]:
    """Where tensors sit: the ``/v1`` array fields and each ``/v2`` input's ``data``."""
    slots: list[tuple[dict, str]] = [(document, name) for name in TENSOR_FIELDS]
    inputs = document.get("inputs")
    if isinstance(inputs, list):
        slots += [(tensor, "data") for tensor in inputs if isinstance(tensor, dict)]
    return slots


def decode_in_helper(body: bytes, max_elements: int) -> dict[str, Any] | None:
    """The document with its large tensor lists as arrays, or None (the worker decodes)."""
    try:
        document = codec.decode_json_object(body)
    except Exception:
        return None
    lists = [
        (node, key, codec.nested_size(node[key]))
        for node, key in _tensor_slots(document)
        if isinstance(node.get(key), list)
    ]
    if sum(size for _, _, size in lists) > max_elements:
        return None  # the worker's own decode answers 413 before allocating
    booleans = codec.may_hold_booleans(body)
    for node, key, size in lists:
        if size < SMALL:
            continue
        value = node[key]
        try:
            array = np.asarray(value)
        except (ValueError, TypeError, OverflowError, RecursionError):
            return None
        if array.dtype.kind not in "iuf" or array.ndim > codec.MAX_DIMENSIONS:
            return None
        if booleans and codec.holds_boolean(value, array.ndim):
            return None
        node[key] = array
    return document


def decode_file(body_path: str, arrays_path: str, max_elements: int) -> dict[str, Any] | None:
    """In the helper process: read the body from ``body_path``, decode it, and write its arrays
    to ``arrays_path``; in the document each becomes ``(ARRAY, offset, dtype, shape)``."""
    with open(body_path, "rb") as file:
        body = file.read()
    document = decode_in_helper(body, max_elements)
    if document is None:
        return None
    offset = 0
    try:
        with open(arrays_path, "wb") as file:
            for node, key in _tensor_slots(document):
                array = node.get(key)
                if isinstance(array, np.ndarray):
                    array = np.ascontiguousarray(array)
                    file.write(memoryview(array).cast("B"))
                    node[key] = (ARRAY, offset, array.dtype.str, array.shape)
                    offset += array.nbytes
    except OSError:  # a full spool: the worker decodes this one itself
        return None
    return document


def _load_arrays(document: dict[str, Any], arrays_path: str) -> dict[str, Any]:
    for node, key in _tensor_slots(document):
        reference = node.get(key)
        if isinstance(reference, tuple) and reference[0] == ARRAY:  # JSON has no tuples
            _, offset, dtype, shape = reference
            count = int(np.prod(shape))
            node[key] = np.fromfile(arrays_path, dtype, count, offset=offset).reshape(shape)
    return document


def spool_directory() -> str:
    """Memory-backed ``/dev/shm`` when it is there and writable, else the temp directory."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


def _helper_init() -> None:
    """In the helper: low priority, and exit as soon as the worker that started it is gone
    (a SIGKILLed worker runs no clean-up, and an orphan would hold its stdout open)."""
    lower_priority()
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def lower_priority(nice: int = BACKGROUND_NICE) -> None:
    """Yield the CPU to the event loop: background work (decode helper, compute threads) runs
    at nice +10 (the heavy lane at +15), so under saturation health checks and new connections
    still get a core, and cheap requests get more of it than expensive ones."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class Decoder:
    """The worker's helper process, started lazily (or by :meth:`start` at warm-up)."""

    def __init__(self) -> None:
        self.threshold = 0  # bytes; 0 means never offload
        self.spool = spool_directory()
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def configure(self, threshold: int) -> None:
        self.threshold = threshold

    def start(self) -> Callable[[], None]:
        """Start the helper; the returned function waits until it has imported what it needs
        (so warm-up can compile kernels meanwhile). If it cannot start, that logs why and the
        worker decodes everything itself (slower for large bodies, still correct)."""
        if self.threshold <= 0:
            return lambda: None
        try:
            job = self._executor().submit(decode_in_helper, b"{}", 0)
        except Exception as error:
            return partial(self._failed, error)
        return partial(self._wait, job)

    def _wait(self, job: Future) -> None:
        try:
            job.result()
        except Exception as error:
            self._failed(error)

    def _failed(self, error: Exception) -> None:
        logger.warning("decode helper did not start (%s); decoding in the worker", error)
        self.close()
        self.threshold = 0

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn: a fresh interpreter (forking a process that runs threads is unsafe).
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(1, mp_context=context, initializer=_helper_init)
            return self._pool

    def decode(self, body: bytes, max_elements: int, busy: bool = True) -> dict[str, Any]:
        """The document; large bodies through the helper when the worker is ``busy`` (other
        scoring requests in flight), and always past ``ALWAYS`` bytes.

        The helper costs a lone request ~15 % (the spool files, the arrays' copy back); a lone
        request stalls nobody for long, so bodies up to ``ALWAYS`` (a ~0.4 s parse) decode
        in the worker unless others are waiting.
        """
        size = len(body)
        if self.threshold > 0 and size >= self.threshold and (busy or size >= ALWAYS):
            document = self._offload(body, max_elements)
            if document is not None:
                return document
        return codec.decode_json_object(body)

    def _offload(self, body: bytes, max_elements: int) -> dict[str, Any] | None:
        """The body goes to the helper through a spool file (the copy releases the GIL, a
        pickle through a pipe would not); None when the helper declines or fails."""
        try:
            fd, body_path = tempfile.mkstemp(prefix="loss-service-", suffix=".json", dir=self.spool)
        except OSError as error:
            logger.warning("no spool file in %s (%s); decoding in the worker", self.spool, error)
            return None
        arrays_path = body_path + ".arrays"
        try:
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(body)
            except OSError as error:  # a full /dev/shm, say: this request decodes in the worker
                logger.warning("spool file not written (%s); decoding in the worker", error)
                return None
            job = self._executor().submit(decode_file, body_path, arrays_path, max_elements)
            document = job.result()
            return None if document is None else _load_arrays(document, arrays_path)
        except (BrokenProcessPool, OSError, RuntimeError) as error:
            logger.warning("decode helper failed (%s); decoding in the worker", error)
            self.close()
            return None
        finally:
            for path in (body_path, arrays_path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


DECODER = Decoder()
