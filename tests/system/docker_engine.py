"""A Docker engine for tests/system/test_image.py: the one already running, or Debian's dockerd
started for the run (root only) and stopped after it; the docker CLI with a timeout on every
call; the stand-in base images (deploy/standin/build.sh) and the project's image built on them.

Everything the tests create is named with PREFIX, removed before and after the run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.waiting import wait_for

PREFIX = "loss-service-test-"
IMAGE = "loss-service:image-test"
STANDIN_PYTHON = "loss-service-standin/python:bookworm"
STANDIN_NGINX = "loss-service-standin/nginx:bookworm"
ENGINE_START_TIMEOUT = 60.0
ENGINE_STOP_TIMEOUT = 60.0
STANDIN_TIMEOUT = 600.0  # two mmdebstrap runs and two small builds: ~1.5 min here
BUILD_TIMEOUT = 600.0  # the image: ~1.2 min here (pip from PyPI, the numba warm-up)
COMMAND_TIMEOUT = 60.0
ENABLE = "RUN_IMAGE_TESTS"  # set by `make image-test`


@dataclass
class Engine:
    docker: str
    started: subprocess.Popen[bytes] | None  # our dockerd, or None for one already running
    log: Path

    def run(
        self, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # legacy builder: no frontend image pulled
        result = subprocess.run(
            [self.docker, *args], capture_output=True, text=True, timeout=timeout, env=env
        )
        if check and result.returncode != 0:
            pytest.fail(f"docker {' '.join(args)[:300]}: exit {result.returncode}\n{result.stderr}")
        return result

    def inspect(self, name: str, template: str) -> str:
        return self.run("inspect", "--format", template, name).stdout.strip()

    def inspect_json(self, name: str) -> dict:
        return json.loads(self.run("inspect", name).stdout)[0]

    def remove_ours(self) -> None:
        """Every container and network of these tests, left over or not (and their volumes)."""
        found = self.run("ps", "-aq", "--filter", f"name={PREFIX}", check=False).stdout.split()
        if found:
            self.run("rm", "-f", "-v", *found, check=False)
        networks = self.run("network", "ls", "-q", "--filter", f"name={PREFIX}", check=False)
        for network in networks.stdout.split():
            self.run("network", "rm", network, check=False)


def engine_answers(docker: str) -> bool:
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def skip_without_engine() -> tuple[str, str | None]:
    """(docker CLI, dockerd to start or None when an engine already answers), or skip saying why."""
    if os.environ.get(ENABLE) != "1":
        pytest.skip(f"builds and runs the Docker image: `make image-test` ({ENABLE}=1)")
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI: `apt-get install -y docker.io` (.ci/run does, as root)")
    if engine_answers(docker):
        return docker, None
    dockerd = shutil.which("dockerd") or (
        "/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None
    )
    if dockerd is None:
        pytest.skip("no Docker engine running and no dockerd: `apt-get install -y docker.io`")
    if os.geteuid() != 0:
        pytest.skip("no Docker engine running, and starting dockerd needs root")
    return docker, dockerd


@contextmanager
def docker_engine(work: Path) -> Iterator[Engine]:
    """The running engine, or dockerd started now (overlay2, cgroupfs) and stopped at the end."""
    docker, dockerd = skip_without_engine()
    log = work / "dockerd.log"
    process = None
    if dockerd is not None:
        with log.open("ab") as output:
            process = subprocess.Popen(
                [
                    dockerd,
                    "--storage-driver=overlay2",
                    "--exec-opt=native.cgroupdriver=cgroupfs",
                    f"--pidfile={work / 'dockerd.pid'}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if (
            not wait_for(
                lambda: engine_answers(docker) or process.poll() is not None,
                ENGINE_START_TIMEOUT,
                0.5,
            )
            or process.poll() is not None
        ):
            stop_dockerd(process)
            pytest.fail(
                f"dockerd did not answer in {ENGINE_START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}"
            )
    engine = Engine(docker, process, log)
    engine.remove_ours()
    try:
        yield engine
    finally:
        engine.remove_ours()
        if process is not None:
            # Our own engine: drop the untagged images each --no-cache build leaves behind
            # (the builder stage, the image this run's build replaced).
            engine.run("image", "prune", "--force", check=False, timeout=120)
            stop_dockerd(process)


def stop_dockerd(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (dockerd stops its containers and its containerd), SIGKILL past the deadline."""
    with suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=ENGINE_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass(frozen=True)
class Built:
    standin_seconds: float
    build_seconds: float
    size_bytes: int


def build_images(engine: Engine) -> Built:
    """The stand-in bases (kept when they exist), then the image on the python one."""
    missing = [
        tag
        for tag in (STANDIN_PYTHON, STANDIN_NGINX)
        if engine.run("image", "inspect", tag, check=False).returncode
    ]
    if missing and (shutil.which("mmdebstrap") is None or os.geteuid() != 0):
        pytest.skip(
            f"no {', '.join(missing)}, and building it needs root and mmdebstrap "
            "(`apt-get install -y mmdebstrap`; .ci/run does, as root)"
        )
    start = time.monotonic()
    script = ROOT / "deploy" / "standin" / "build.sh"
    result = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        timeout=STANDIN_TIMEOUT,
        env={**os.environ, "DOCKER": engine.docker},
        check=False,
    )
    assert result.returncode == 0, f"{script}: exit {result.returncode}\n{result.stderr[-3000:]}"
    standin = time.monotonic() - start
    start = time.monotonic()
    build = engine.run(
        "build",
        "--no-cache",  # every run builds from the lock, and the time is a build's
        "--build-arg",
        f"PYTHON_IMAGE={STANDIN_PYTHON}",
        "-t",
        IMAGE,
        str(ROOT),
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert build.returncode == 0, (
        f"docker build: exit {build.returncode}\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    )
    seconds = time.monotonic() - start
    size = int(engine.inspect(IMAGE, "{{.Size}}"))
    return Built(standin, seconds, size)
