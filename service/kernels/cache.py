"""Stale machine code in numba's on-disk cache, and how each package avoids it.

numba keys each function's cache on its own source file only. A kernel that calls a helper
from another module (every kernel here calls :mod:`.vmath`, :mod:`.stable` or :mod:`.blocks`;
the JSON reader's kernels call each other across modules) has that helper compiled into its
own machine code, so after the helper's file changes it would load the old code. So a package
keeps a fingerprint of its sources beside the cache, and before anything of it is compiled,
:func:`refresh` empties every cache index of the package when the fingerprint differs (the
calls then compile afresh) and keeps the new one. ``service.kernels`` and the JSON reader
(``service.api.jsonread``) call it when they are first imported, before any kernel runs.

A checkout's ``git pull`` changes sources under a kept cache; an image bakes its caches from
the sources it ships, so there the fingerprints match and nothing is flushed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import sys
from pathlib import Path

from numba.core import config
from numba.core.registry import CPUDispatcher

#: This package: the kernels, and the helpers compiled into them.
KERNELS = Path(__file__).parent


def fingerprint(package: Path) -> str:
    """SHA-256 of the package's ``*.py`` files, names and contents."""
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint_path(package: Path, name: str) -> Path:
    """Beside the cache: NUMBA_CACHE_DIR when set (an image bakes its cache there and its
    package tree is read-only), else the package's __pycache__, numba's default."""
    cache_dir = getattr(config, "CACHE_DIR", "")  # (numba's config is built at run time)
    root = Path(cache_dir) if cache_dir else package / "__pycache__"
    return root / f"{name}-sources.sha256"


def dispatchers(module_prefix: str) -> list[CPUDispatcher]:
    """Every numba function defined in an imported module whose name starts with the prefix."""
    return [
        item
        for name, module in list(sys.modules.items())
        if name.startswith(module_prefix)
        for item in vars(module).values()
        if isinstance(item, CPUDispatcher) and item.__module__ == name
    ]


def refresh(package: Path, module_prefix: str, name: str) -> bool:
    """When the package's sources differ from the ones its cache was built from: import every
    module of the package, empty every cache index of its functions and keep the new
    fingerprint (whatever compiles from now on is from these sources). Returns whether it
    did."""
    if getattr(config, "DISABLE_JIT", 0):
        return False  # nothing compiles, so nothing is marked as compiled from these sources
    current = fingerprint(package)
    path = fingerprint_path(package, name)
    try:
        if path.read_text() == current:
            return False
    except OSError:
        pass
    for module in sorted(package.glob("*.py")):
        if module.stem != "__init__":
            importlib.import_module(module_prefix + module.stem)
    for dispatcher in dispatchers(module_prefix):
        cache = getattr(dispatcher, "_cache", None)  # numba's FunctionCache (or NullCache)
        if cache is not None:
            with contextlib.suppress(OSError, AttributeError):
                cache.flush()
    with contextlib.suppress(OSError):  # a read-only tree: numba would not cache either
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(current)
    return True
