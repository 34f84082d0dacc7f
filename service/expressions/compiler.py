"""Compiling a custom expression: parse, differentiate, assemble; cached in a bounded LRU.

:func:`compile_expression` returns a :class:`CompiledExpression`: the normalised expression,
its derivative, and two programs for the one generic kernel (value only, and value with
slope). Nothing here generates or runs code: "compiling" is building small numpy arrays,
a millisecond for a typical expression and tens of milliseconds at the limits, so it never
holds the numba compiler lock or the GIL for long, and it runs in the request's worker thread
like the rest of the computation.

The cache holds :data:`CACHE_SIZE` expressions keyed by the normalised expression and the
constants (name, value). One lock guards the table only; an expression is built outside it,
once: a second request for an expression being built waits for that build, requests for
other expressions do not wait at all. Failures are not cached.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from service.expressions.derivative import derivative
from service.expressions.grammar import ExpressionError, parse
from service.expressions.program import Program, assemble
from service.expressions.tree import Node, render

CACHE_SIZE = 64
#: The derivative as text can be long (O(terms x depth)); responses show at most this much.
MAX_SHOWN_CHARACTERS = 4000

logger = logging.getLogger("service")


@dataclass(frozen=True)
class CompiledExpression:
    expression: str  # normalised
    derivative: str  # normalised, at most MAX_SHOWN_CHARACTERS (then ending in "...")
    value_tree: Node
    derivative_tree: Node
    value_program: Program  # outputs: (value,)
    full_program: Program  # outputs: (value, slope)


def compile_expression(expression: str, constants: Mapping[str, float]) -> CompiledExpression:
    """The compiled expression (from the cache when it was compiled before); raises
    :class:`ExpressionError` for anything the grammar or the limits refuse."""
    try:
        tree = parse(expression, constants)
    except RecursionError:  # the nesting limit keeps the parser far from Python's limit
        raise ExpressionError("the expression is nested too deeply to parse") from None
    key = (render(tree), tuple(sorted((name, float(value)) for name, value in constants.items())))
    return _CACHE.get(key, lambda: _build(tree, constants))


def _build(tree: Node, constants: Mapping[str, float]) -> CompiledExpression:
    try:
        slope = derivative(tree)
        shown = render(slope)
        if len(shown) > MAX_SHOWN_CHARACTERS:
            shown = shown[: MAX_SHOWN_CHARACTERS - 3] + "..."
        return CompiledExpression(
            expression=render(tree),
            derivative=shown,
            value_tree=tree,
            derivative_tree=slope,
            value_program=assemble((tree,), constants),
            full_program=assemble((tree, slope), constants),
        )
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply to compile") from None
    except Exception as error:  # a compile that fails is the client's 422, never a 500
        logger.exception("compiling the custom expression %r failed", render(tree))
        raise ExpressionError("the expression could not be compiled") from error


class _Entry:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: ExpressionError | None = None


class BuildOnceCache:
    """A bounded LRU whose values are built once, outside the lock (see the module docstring)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            builder = entry is None
            if entry is None:
                entry = self._entries[key] = _Entry()
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        if builder:
            try:
                entry.value = build()
            except BaseException as error:
                if not isinstance(error, ExpressionError):
                    error = ExpressionError("the expression could not be compiled")
                entry.error = error
                with self._lock:
                    if self._entries.get(key) is entry:
                        del self._entries[key]
                raise
            finally:
                entry.done.set()
        else:
            entry.done.wait()
        if entry.error is not None:
            raise ExpressionError(entry.error.message, entry.error.column)
        return entry.value


_CACHE = BuildOnceCache(CACHE_SIZE)
