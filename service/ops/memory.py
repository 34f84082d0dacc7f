"""Freed memory goes back to the operating system after heavy requests.

glibc's ``malloc`` raises its mmap threshold as large blocks are freed (up to 32 MiB), so the
buffers of a large request (its body, arrays, response) end up on the heap, where freeing them
does not shrink the process: a worker that served a few 40 MB requests stayed hundreds of MiB
larger. ``malloc_trim(0)`` hands the free pages back. It costs a walk over the heap (about a
millisecond), and the next large request pays the page faults of fresh memory again, so the
heavy lane calls it once it has been idle for half a second, never per request.
Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def return_freed_memory() -> None:
    """Give the heap's free pages back to the system (releases the GIL while it runs)."""
    if _TRIM is not None:
        _TRIM(0)
