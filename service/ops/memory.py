"""The allocator: large buffers reused while requests keep coming, and freed memory handed back
to the operating system once the compute lanes are idle.

By default glibc's ``malloc`` moves its mmap threshold as large blocks are freed (up to 32 MiB)
and trims the heap's top whenever more than twice that is free, so the buffers of a large
request (its message, arrays, response) are returned to the system as soon as they are freed
and the next request pays the page faults of fresh memory again: measured on a 1e6-entry gRPC
call, ~25,000 faults (~100 MB of pages zeroed) per call. :func:`tune_allocator` fixes the mmap
threshold at its maximum (32 MiB: blocks below it come from the heap and are reused) and sets
the trim threshold high, so freeing no longer hands memory back on every call. Instead
``malloc_trim(0)`` does, from each compute lane once it has been idle for half a second
(:mod:`service.compute.lanes`): a worker that served a burst of large requests is back to its
size shortly after the burst, never per request. Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

#: mallopt's parameters (glibc's malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: Blocks of at least this size are mapped (and unmapped when freed): glibc's largest.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the heap's top beyond which ``free`` trims it (lanes trim when idle).
TRIM_THRESHOLD = 512 * 1024 * 1024


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


_LIBC = _libc()


def tune_allocator() -> bool:
    """Fix the mmap and trim thresholds (once per worker process, at start-up); False where
    this is not glibc."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        _LIBC.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def return_freed_memory() -> None:
    """Give the heap's free pages back to the system (releases the GIL while it runs)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
