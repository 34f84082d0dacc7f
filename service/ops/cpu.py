"""Which of the image's numba caches this host runs: one cache per x86-64 CPU level, chosen
from the host's CPU flags before numba is imported.

numba keys each cached kernel on (target triple, CPU name, CPU features), so an image can only
ship a cache for a named CPU, not for "whatever the host is". One cache for ``generic`` (SSE2)
runs everywhere but is slow where kernels need more than SSE2 (measured: quantile 5.3x and
smooth_l1 6.2x slower than for the host CPU). So the image bakes one cache per psABI level,
``<LOSS_KERNEL_CACHES>/<level>/``, and :func:`configure` (run when the ``service`` package is
imported, before anything imports numba) points numba at the best level the host supports:
``NUMBA_CPU_NAME=<level>``, ``NUMBA_CPU_FEATURES=""`` and ``NUMBA_CACHE_DIR=<root>/<level>``.
The empty feature string matters: with a CPU name other than ``generic`` numba otherwise adds
every feature of the host, which both keys the cache on the host and lets LLVM use
instructions beyond the level.

Without ``LOSS_KERNEL_CACHES`` (a checkout, the tests) nothing is set: numba compiles for the
host CPU as usual. ``NUMBA_CPU_NAME`` set to a level picks that level (the image's build bakes
each level that way), unless the host cannot run it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

#: The variable an image sets to the directory holding one numba cache per level.
ROOT_ENV = "LOSS_KERNEL_CACHES"
GENERIC = "generic"
#: Each level's CPU flags (as /proc/cpuinfo names them) on top of the level below it, from
#: the x86-64 psABI's micro-architecture levels. ``pni`` is SSE3, ``abm`` LZCNT; ``xsave`` is
#: listed only when the kernel enabled it (the psABI's OSXSAVE).
LEVELS: dict[str, frozenset[str]] = {
    GENERIC: frozenset(),
    "x86-64-v2": frozenset({"cx16", "lahf_lm", "popcnt", "pni", "ssse3", "sse4_1", "sse4_2"}),
    "x86-64-v3": frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    "x86-64-v4": frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
}

logger = logging.getLogger("service")


@dataclass(frozen=True)
class Choice:
    level: str
    cache_dir: str
    baked: tuple[str, ...]
    note: str = ""


#: What :func:`configure` chose in this process (None: it set nothing).
CHOSEN: Choice | None = None


def required(level: str) -> frozenset[str]:
    """Every flag ``level`` needs: its own and those of the levels below it."""
    names = list(LEVELS)
    return frozenset().union(*(LEVELS[name] for name in names[: names.index(level) + 1]))


def supports(flags: Iterable[str], level: str) -> bool:
    return required(level) <= set(flags)


def best_level(flags: Iterable[str], baked: Iterable[str]) -> str:
    """The highest of the ``baked`` levels the flags support; ``generic`` when none is."""
    have, offered = set(flags), set(baked)
    chosen = GENERIC
    for level in LEVELS:
        if level in offered and required(level) <= have:
            chosen = level
    return chosen


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The first processor's flags; none when they cannot be read (not Linux, not x86)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def baked_levels(root: Path) -> tuple[str, ...]:
    """The levels whose cache directory under ``root`` holds a numba index (numba keeps them
    in a subdirectory per source directory, named after its path)."""
    return tuple(level for level in LEVELS if next((root / level).rglob("*.nbi"), None))


def configure(
    environ: MutableMapping[str, str] | None = None, flags: Iterable[str] | None = None
) -> Choice | None:
    """Point numba at the best baked cache for this host (see the module's docstring); call
    before numba is imported. The same environment gives the same choice, so worker processes
    that inherit the variables agree with their parent."""
    global CHOSEN
    env = os.environ if environ is None else environ
    root = env.get(ROOT_ENV)
    if not root:
        return None
    have = cpu_flags() if flags is None else frozenset(flags)
    baked = baked_levels(Path(root))
    asked, note = env.get("NUMBA_CPU_NAME"), ""
    if asked in LEVELS and supports(have, asked):
        level = asked
    else:
        level = best_level(have, baked)
        if asked:
            note = f"NUMBA_CPU_NAME={asked} ignored: not a level this CPU runs"
    cache_dir = str(Path(root) / level)
    env["NUMBA_CPU_NAME"] = level
    env["NUMBA_CPU_FEATURES"] = ""  # the level's own features, not the host's
    env["NUMBA_CACHE_DIR"] = cache_dir
    CHOSEN = Choice(level, cache_dir, baked, note)
    return CHOSEN


def log_choice() -> None:
    if CHOSEN is None:
        return
    if CHOSEN.note:
        logger.warning(CHOSEN.note)
    if CHOSEN.level in CHOSEN.baked:
        logger.info("kernels for CPU level %s, from %s", CHOSEN.level, CHOSEN.cache_dir)
    else:
        logger.warning(
            "kernels for CPU level %s: no cache baked for it (baked: %s), compiling into %s",
            CHOSEN.level,
            ", ".join(CHOSEN.baked) or "none",
            CHOSEN.cache_dir,
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m service.ops.levels LEVEL...``: print those of the levels this host can run code
    built for (the image's build bakes only those; ``generic`` always), one line; say on stderr
    which not and why. Exit 2 for an unknown level."""
    args = sys.argv[1:] if argv is None else argv
    unknown = [level for level in args if level not in LEVELS]
    if not args or unknown:
        print(f"usage: python -m service.ops.levels {{{','.join(LEVELS)}}}...", file=sys.stderr)
        return 2
    flags, runnable = cpu_flags(), []
    for level in args:
        missing = sorted(required(level) - flags)
        if missing:
            print(f"{level}: skipped, this CPU lacks {' '.join(missing)}", file=sys.stderr)
        else:
            runnable.append(level)
    print(" ".join(runnable))
    return 0
