"""The route table's vocabulary: what a route is, what its handler receives, and the router.

A :class:`Route` is everything the service knows about one method on one path template: the
handler (the only code that serves it), whether it answers without an API key, whether it is a
scoring route (a body read within limits, admitted to compute), which protocol renders its
errors, and its OpenAPI operation. Dispatch, API keys, access logs, metric labels and the
OpenAPI document all read the same table (:mod:`service.api.table`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service.api.body import Progress
from service.api.problems import Reply
from service.losses.registry import LossSpec, lookup

if TYPE_CHECKING:
    from service.compute.pipeline import Pipeline
    from service.ops.readiness import Readiness
    from service.ops.settings import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Services:
    """What handlers may use: the settings, readiness, the scoring pipeline, the table."""

    settings: Settings
    readiness: Readiness
    pipeline: Pipeline
    routes: tuple[Route, ...] = ()


class Request:
    """One HTTP request as a handler sees it."""

    __slots__ = ("headers", "loss", "params", "progress", "receive", "scope", "services")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[bytes, bytes],
        params: dict[str, str],
        services: Services,
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.headers = headers
        self.params = params
        self.services = services
        self.progress = Progress()
        #: The canonical name of the loss the path names, once a handler has looked it up
        #: (``"unknown"`` when it names none): the metrics' and the access log's label.
        self.loss: str | None = None

    def named_loss(self) -> LossSpec:
        """The loss (or model) the path's ``{name}`` names, looked up once; 404 otherwise."""
        self.loss = "unknown"
        spec = lookup(self.params["name"])
        self.loss = spec.name
        return spec

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


Handler = Callable[[Request], Awaitable[Reply]]


@dataclass(frozen=True)
class Operation:
    """The OpenAPI operation of a route (see :mod:`service.api.openapi`)."""

    operation_id: str
    summary: str
    tag: str
    description: str = ""
    #: The requestBody object, when the route takes a body.
    request_body: dict[str, Any] | None = None
    #: Documented answers: status -> OpenAPI response object (errors are rendered as problems).
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    #: The OpenAPI operation; None leaves the route out of the document.
    operation: Operation | None = None
    #: Answers without an API key (health, metrics, documentation).
    open: bool = False
    #: Reads a body within limits and computes: 408, 503 and 504 are possible answers.
    scoring: bool = False
    #: Open Inference Protocol route: problems carry its ``error`` member and status.
    inference: bool = False
    #: Documented concrete paths this template serves, each with its own operation (one per
    #: loss for ``POST /v1/losses/{name}``); the template itself is then left undocumented.
    variants: Callable[[], Iterable[tuple[str, Operation]]] | None = None

    @property
    def names_loss(self) -> bool:
        """The path names a loss (``{name}``): metrics and logs label it."""
        return "{name}" in self.path


class Match:
    """What the router found for a path: the routes by method, the path parameters."""

    __slots__ = ("by_method", "params", "reads_body", "template")

    def __init__(
        self, template: str, by_method: dict[str, Route], params: dict[str, str], reads_body: bool
    ) -> None:
        self.template, self.by_method, self.params = template, by_method, params
        #: A scoring route serves this path: an answer before its body was read closes.
        self.reads_body = reads_body

    def allowed(self) -> list[str]:
        methods = list(self.by_method)
        if "GET" in methods:
            methods.insert(methods.index("GET") + 1, "HEAD")
        return methods


class Router:
    """Paths to routes: fixed paths by dictionary; templates by their segment count and first
    two segments (every template starts with two literal ones: ``/v1/losses/{name}``), then
    segment by segment."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.fixed: dict[str, dict[str, Route]] = {}
        self.templates: dict[tuple[int, str, str], list[tuple[list[str], str, dict[str, Route]]]]
        self.templates = {}
        self.reading: set[str] = set()  # templates with a scoring route
        for route in routes:
            if route.scoring:
                self.reading.add(route.path)
            if "{" not in route.path:
                self.fixed.setdefault(route.path, {})[route.method] = route
                continue
            segments = route.path.split("/")
            if any("{" in part for part in segments[:3]):
                raise ValueError(f"{route.path}: a template starts with two literal segments")
            key = (len(segments), segments[1], segments[2])
            candidates = self.templates.setdefault(key, [])
            same = [by_method for _, template, by_method in candidates if template == route.path]
            if same:
                same[0][route.method] = route
            else:
                candidates.append((segments[3:], route.path, {route.method: route}))

    def match(self, path: str) -> Match | None:
        by_method = self.fixed.get(path)
        if by_method is not None:
            return Match(path, by_method, {}, path in self.reading)
        parts = path.split("/")
        if len(parts) < 4:
            return None
        for segments, template, by_method in self.templates.get(
            (len(parts), parts[1], parts[2]), ()
        ):
            params = {}
            for pattern, part in zip(segments, parts[3:], strict=True):
                if pattern[:1] == "{":
                    if not part:
                        break
                    params[pattern[1:-1]] = part
                elif pattern != part:
                    break
            else:
                return Match(template, by_method, params, template in self.reading)
        return None
