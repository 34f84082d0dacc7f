"""numba's on-disk cache and helpers in other modules (service/kernels/cache.py).

Two throw-away packages, each a kernel in ``a.py`` calling a helper in ``b.py``, both cached;
one package calls :func:`service.kernels.cache.refresh` when imported, as service/kernels and
the JSON reader do, the other does not. Each runs in a fresh process, then the helper's file
changes and each runs again: without the refresh numba loads the old machine code (the kernel's
own file did not change), with it the new helper's answer comes back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.kernels import cache
from tests.support.paths import ROOT

KERNEL = """
from numba import njit
from {package} import b

@njit(cache=True)
def f(x):
    return b.g(x) + 1.0
"""
HELPER = """
from numba import njit

@njit(cache=True)
def g(x):
    return x * {factor}
"""
REFRESHING = """
from pathlib import Path
from service.kernels import cache
cache.refresh(Path(__file__).parent, __name__ + ".", "{package}")
"""


def make_package(root: Path, name: str, refreshing: bool) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text(REFRESHING.format(package=name) if refreshing else "")
    (package / "a.py").write_text(KERNEL.format(package=name))
    (package / "b.py").write_text(HELPER.format(factor=2.0))


def answer(root: Path, name: str) -> float:
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{ROOT}", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("NUMBA_CACHE_DIR", None)  # beside the sources, numba's default
    env.pop("NUMBA_DISABLE_JIT", None)  # compiled and cached even under kernels-as-python
    result = subprocess.run(
        [sys.executable, "-c", f"from {name} import a; print(a.f(10.0))"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=root,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return float(result.stdout.split()[-1])


def test_a_changed_helper_is_compiled_again_only_with_the_refresh(tmp_path: Path) -> None:
    make_package(tmp_path, "plain", refreshing=False)
    make_package(tmp_path, "refreshed", refreshing=True)
    assert answer(tmp_path, "plain") == 21.0
    assert answer(tmp_path, "refreshed") == 21.0
    assert (tmp_path / "refreshed" / "__pycache__" / "refreshed-sources.sha256").exists()
    for name in ("plain", "refreshed"):
        (tmp_path / name / "b.py").write_text(HELPER.format(factor=3.0))
    assert answer(tmp_path, "plain") == 21.0  # numba's own cache: the old helper
    assert answer(tmp_path, "refreshed") == 31.0


def test_the_fingerprint_covers_every_source_file(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 1\n")
    before = cache.fingerprint(tmp_path)
    (tmp_path / "b.py").write_text("y = 2\n")
    changed = cache.fingerprint(tmp_path)
    (tmp_path / "b.py").rename(tmp_path / "c.py")
    renamed = cache.fingerprint(tmp_path)
    assert len({before, changed, renamed}) == 3
