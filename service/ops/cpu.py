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

A level is compiled with LLVM's generic tuning for it, which leaves some kernels ~10% behind
code for the host's own micro-architecture (categorical cross-entropy and hinge at
``x86-64-v4`` on Zen 4). So the build also bakes its own machine's CPU as numba would by
default (``HOST``: LLVM's name for it, ``znver4`` say, and its exact feature string, which
``-`` features included overrides what the name implies), and records that string beside the
cache. A host with the same LLVM name and every ``+`` feature of that string uses the cache,
compiled with that same string: its code uses only features the build machine has, and so has
this host.

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


#: For ``python -m service.ops.levels``: the build machine's own CPU (its LLVM name).
HOST = "host"
#: Beside a micro-architecture's cache: the LLVM feature string it was compiled with (the
#: build machine's), written once it was baked.
FEATURES_FILE = "features"

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


def llvm_host() -> tuple[str, str]:
    """LLVM's name for this CPU and its feature string (``+avx2,-amx-tile,...``): what numba
    compiles for by default."""
    import llvmlite.binding as llvm  # (not numba: it must not be imported yet)

    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def plus(features: str) -> frozenset[str]:
    """The features a feature string turns on."""
    return frozenset(f[1:] for f in features.split(",") if f.startswith("+"))


def tuned_cache(root: Path, host: tuple[str, str]) -> str | None:
    """The feature string of a cache under ``root`` baked for this host's micro-architecture
    on a machine with no feature this host lacks (so none of its code can be an illegal
    instruction here); None when there is none."""
    name, features = host
    if not name or name in LEVELS:
        return None
    try:
        baked = (root / name / FEATURES_FILE).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return None
    return baked if baked and plus(baked) <= plus(features) else None


def record_bake(environ: MutableMapping[str, str] | None = None) -> None:
    """After a successful warm-up at a micro-architecture: write the feature string it was
    compiled with, which marks the cache usable (:func:`tuned_cache`)."""
    env = os.environ if environ is None else environ
    name, cache_dir = env.get("NUMBA_CPU_NAME", ""), env.get("NUMBA_CACHE_DIR", "")
    features = env.get("NUMBA_CPU_FEATURES", "")
    if env.get(ROOT_ENV) and name and name not in LEVELS and cache_dir and features:
        (Path(cache_dir) / FEATURES_FILE).write_text(features + "\n", encoding="utf-8")


def configure(
    environ: MutableMapping[str, str] | None = None,
    flags: Iterable[str] | None = None,
    host: tuple[str, str] | None = None,
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
    micro = tuple(p.name for p in Path(root).glob(f"*/{FEATURES_FILE}"))
    if host is None and (micro or (asked and asked not in LEVELS)):
        host = llvm_host()  # only when a micro-architecture is in play
    tuned = None if host is None else tuned_cache(Path(root), host)
    if tuned is not None and host is not None:
        baked = (*baked, host[0])
    features = ""  # a level's own features, not the host's
    if asked in LEVELS and supports(have, asked):
        level = asked
    elif host is not None and tuned is not None and asked in (None, "", host[0]):
        level, features = host[0], tuned  # (a worker inheriting the choice makes it again)
    elif asked and host is not None and asked == host[0]:
        level, features = asked, host[1]  # this machine, as numba would: how the build bakes it
    else:
        level = best_level(have, baked)
        if asked:
            note = f"NUMBA_CPU_NAME={asked} ignored: not a level this CPU runs"
    cache_dir = str(Path(root) / level)
    env["NUMBA_CPU_NAME"] = level
    env["NUMBA_CPU_FEATURES"] = features
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
    which not and why. ``host`` prints LLVM's name for this machine's CPU. Exit 2 for an
    unknown level."""
    args = sys.argv[1:] if argv is None else argv
    unknown = [level for level in args if level not in LEVELS and level != HOST]
    if not args or unknown:
        names = ",".join([*LEVELS, HOST])
        print(f"usage: python -m service.ops.levels {{{names}}}...", file=sys.stderr)
        return 2
    flags, runnable = cpu_flags(), []
    for level in args:
        if level == HOST:
            name = llvm_host()[0]
            if name and name not in (*LEVELS, "x86-64") and name not in runnable:
                runnable.append(name)
            continue
        missing = sorted(required(level) - flags)
        if missing:
            print(f"{level}: skipped, this CPU lacks {' '.join(missing)}", file=sys.stderr)
        else:
            runnable.append(level)
    print(" ".join(runnable))
    return 0
