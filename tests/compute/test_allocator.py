"""The allocator's tuning (service/ops/memory.py): freed large buffers are reused, not handed
back to the system and faulted in again on the next request. Measured in a fresh process each
(the tuning is process-wide): page faults of a burst of four 16 MB arrays, allocated and freed
again and again. Returning freed memory when the lanes are idle is checked on real servers
(tests/system/test_hostile.py: settled RSS after large requests)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.ops.memory import _LIBC
from tests.support.paths import ROOT

SCRIPT = """
import resource, sys
import numpy as np
from service.ops.memory import tune_allocator
if sys.argv[1] == "tuned":
    assert tune_allocator()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def burst():
    arrays = [np.ones(2_000_000) for _ in range(4)]  # 4 x 16 MB, like a large request's
    del arrays
burst()
before = faults()
for _ in range(5):
    burst()
print((faults() - before) / 5)
"""


def faults_per_burst(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(done.stdout)


@pytest.mark.skipif(_LIBC is None, reason="the allocator is tuned on glibc only")
def test_tuned_allocator_reuses_freed_large_buffers() -> None:
    # 64 MB of fresh pages is ~16,000 faults of 4 KiB; glibc's default hands most back.
    assert faults_per_burst("default") > 1000
    assert faults_per_burst("tuned") < 100
