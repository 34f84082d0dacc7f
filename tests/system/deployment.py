"""The deployment files read as structures, not grepped as strings: a small Dockerfile parser
(instructions and stages), .dockerignore's matching rules, docker-compose.yml's environment,
ports and mounts, and the Kubernetes manifests (nginx.conf: tests/system/nginx_conf.py).

Shared by the deployment tests (tests/system/test_dockerfile.py, test_compose.py,
test_nginx_conf.py, test_k8s.py), their fixtures (tests/system/conftest.py) and the server test
that runs the Dockerfile's warm-up step.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from service.ops.settings import Settings, get_settings
from tests.support.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
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


def hadolint_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("hadolint")


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


@dataclass(frozen=True)
class GrpcurlCall:
    address: str  # host:port
    method: str  # "list" (reflection) or "package.Service/Method"
    data: str | None  # the JSON of -d


def grpcurl_calls(text: str) -> list[GrpcurlCall]:
    """The grpcurl commands shown in the comment lines at the top of ``text`` (a command may go
    on over several lines: a quoted argument or a backslash at the end of a line)."""
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line[1:])
    calls, pending = [], ""
    for line in header:
        if not pending and not line.strip().startswith("grpcurl "):
            continue
        pending += line + "\n"
        if line.rstrip().endswith("\\"):
            continue
        try:
            words = shlex.split(pending.replace("\\\n", " "), comments=True)
        except ValueError:  # a quoted argument goes on
            continue
        pending = ""
        data, positional, arguments = None, [], iter(words[1:])
        for word in arguments:
            if word == "-d":
                data = next(arguments)
            elif word != "-plaintext":
                positional.append(word)
        assert len(positional) == 2, f"a grpcurl call I cannot read: {words}"
        assert "-plaintext" in words, f"{words}: nginx's gRPC port is cleartext (h2c)"
        calls.append(GrpcurlCall(positional[0], positional[1], data))
    assert not pending, f"an unfinished grpcurl command: {pending}"
    return calls


# ---- deploy/k8s -------------------------------------------------------------------------------

K8S_EXAMPLES = {"secret.example.yaml"}  # documentation, not applied


def k8s_documents() -> list[tuple[str, dict]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                documents.append((path.name, document))
    return documents


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity: "2", "500m", "1Gi", "512Mi"."""
    text = str(text)
    units = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2}
    units |= {"Gi": 1024**3, "Ti": 1024**4}
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", text).groups()
    return float(number) * units[unit]
