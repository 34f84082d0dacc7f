"""deploy/nginx/nginx.conf as a structure and for a local nginx: a parser of nginx's
configuration syntax with lookups of its servers (HTTP on 8000, gRPC on 8001), locations and
upstreams, for the static tests (test_nginx_conf.py, test_compose.py); and the same file
rendered for Debian's nginx on this machine, for the failover test (cluster.py).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import ROOT
from tests.system.deployment import seconds

NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
NGINX_HEALTH = "/nginx-health"
HTTP_PORT = 8000  # the `listen` of the HTTP server, the replicas' LOSS_SERVICE_PORT
GRPC_PORT = 8001  # the `listen` of the gRPC server, the replicas' LOSS_SERVICE_GRPC_PORT


# ---- the parser -------------------------------------------------------------------------------


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


def upstream_servers(http: Directive) -> list[Directive]:
    return [s for u in find(http, "upstream") for s in find(u, "server")]


def nginx_servers() -> list[Directive]:
    return find(nginx_http(), "server")


def nginx_server(port: int = HTTP_PORT) -> Directive:
    """The server block that listens on ``port``."""
    found = [s for s in nginx_servers() if nginx_listen_port(s) == port]
    assert len(found) == 1, f"{len(found)} servers listen on {port}"
    return found[0]


def nginx_location(path: str, port: int = HTTP_PORT) -> Directive:
    found = [d for d in find(nginx_server(port), "location") if d.args[-1] == path]
    assert len(found) == 1, f"one location {path} in the server on {port}"
    return found[0]


def nginx_upstream(port: int = HTTP_PORT) -> Directive:
    """The upstream that ``location /`` of the server on ``port`` passes requests to
    (``proxy_pass http://NAME`` or ``grpc_pass grpc://NAME``)."""
    location = nginx_location("/", port)
    passes = [d for d in location.children if d.name in ("proxy_pass", "grpc_pass")]
    assert len(passes) == 1, f"location / on {port}: {[d.name for d in passes]}"
    name = passes[0].args[0].partition("://")[2]
    found = [u for u in find(nginx_http(), "upstream") if u.args == [name]]
    assert len(found) == 1, f"{passes[0].args[0]}: {len(found)} upstreams of that name"
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


# ---- for a local nginx -------------------------------------------------------------------


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def replace_once(text: str, pattern: str, replacement: str, flags: int = 0) -> str:
    result, count = re.subn(pattern, lambda _: replacement, text, flags=flags)
    assert count == 1, f"{NGINX_CONF.name}: expected one match of {pattern!r}, found {count}"
    return result


def nginx_build(binary: str) -> tuple[tuple[int, ...], bool]:
    """``nginx -V``: the version (``nginx version: nginx/1.22.1``, on stderr) and whether the
    HTTP/2 module, which the gRPC server needs, is built in."""
    shown = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=30, check=False)
    output = shown.stderr + shown.stdout
    found = re.search(r"nginx/(\d+(?:\.\d+)*)", output)
    assert found, f"{binary} -V: {output!r}"
    version = tuple(int(part) for part in found.group(1).split("."))
    return version, "--with-http_v2_module" in output


def render_nginx_conf(
    template: str,
    ports: dict[int, tuple[int, list[int]]],
    work: Path,
    version: tuple[int, ...],
) -> str:
    """deploy/nginx/nginx.conf for this machine: same directives, local addresses and paths.

    ``ports`` maps each port of the template (8000 HTTP, 8001 gRPC) to (nginx's local listen
    port, the local replicas' ports): each ``listen`` and each upstream's servers follow it."""
    # Each upstream's server line(s): the same parameters (max_fails, fail_timeout ...) for
    # every local replica, without `resolve` (a DNS name feature; nginx >= 1.27.3 only).
    blocks = list(re.finditer(r"# servers: begin\n(.*?)\n([ \t]*)# servers: end", template, re.S))
    assert len(blocks) == len(ports), (
        f"{NGINX_CONF.name}: {len(blocks)} '# servers: begin' ... '# servers: end' blocks, "
        f"one per port of {sorted(ports)} expected"
    )
    text, end = "", 0
    for block in blocks:
        servers = re.findall(r"^\s*server\s+(\S+)\s*(.*?);", block.group(1), re.MULTILINE)
        assert len(servers) == 1, f"one server line between the markers, got {servers}"
        port = int(servers[0][0].rpartition(":")[2])
        assert port in ports, f"{servers[0][0]}: a port other than {sorted(ports)}"
        parameters = [p for p in servers[0][1].split() if p != "resolve"]
        local = "\n".join(
            f"{block.group(2)}server 127.0.0.1:{replica} {' '.join(parameters)};"
            for replica in ports[port][1]
        )
        text += template[end : block.start(1)] + local
        end = block.end(1)
    text += template[end:]

    for port, (listen, _) in ports.items():
        pattern, replacement = rf"\blisten {port};", f"listen 127.0.0.1:{listen};"
        if version < (1, 25, 1) and re.search(rf"{pattern}\s*http2 on;", text):
            # `http2 on;` is nginx >= 1.25.1; before it, the `http2` parameter of `listen`.
            pattern, replacement = rf"{pattern}\s*http2 on;", f"listen 127.0.0.1:{listen} http2;"
        text = replace_once(text, pattern, replacement)
    text = replace_once(text, r"^pid \S+;", f"pid {work}/nginx.pid;", re.M)
    text = replace_once(text, r"^worker_processes \S+;", "worker_processes 2;", re.M)
    text, temp_paths = re.subn(r"(_temp_path )/var/cache/nginx/", f"\\g<1>{work}/", text)
    assert temp_paths == 5, f"five *_temp_path directives under /var/cache/nginx/, {temp_paths}"
    if os.geteuid() == 0:
        # As root, nginx's workers would switch to a user that cannot reach the temporary
        # directory: keep them as the current user.
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        text = f"user {user} {group};\n" + text
    return text
