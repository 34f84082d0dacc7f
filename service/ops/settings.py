"""All configuration, read once from ``LOSS_SERVICE_*`` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_threads(workers: int) -> int:
    """Kernel threads per worker process so that workers x threads <= cores."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOSS_SERVICE_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Interface to bind (--host).")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (--port).")
    workers: int = Field(1, ge=1, description="Worker processes (--workers).")
    grpc_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="gRPC port of the Open Inference Protocol (--grpc-port; Triton's 8001); "
        "0 turns gRPC off. With several workers they share it (SO_REUSEPORT).",
    )
    max_body_bytes: int = Field(268_435_456, ge=1, description="Largest request body; 413 past it.")
    max_elements: int = Field(
        50_000_000, ge=1, description="Most array elements in one request, all arrays counted; 413."
    )
    compute_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Requests computed at once per worker (threads off the event loop).",
    )
    kernel_threads: int = Field(
        default_factory=lambda: default_threads(int(os.environ.get("LOSS_SERVICE_WORKERS", "1"))),
        ge=1,
        description="Threads one large kernel call is split over; default cores / workers.",
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="Log level; one JSON access line per request at info."
    )
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated API keys; when set, /v1 and /v2 need one "
        "(Authorization: Bearer <key> or X-API-Key); health routes and /metrics stay open.",
    )
    max_groups: int = Field(
        1000, ge=1, description="Most distinct slice labels in one evaluation's groups; 422."
    )
    max_in_flight: int = Field(
        64, ge=1, description="Scoring requests admitted at once per worker; 503 past it."
    )
    max_in_flight_bytes: int = Field(
        1_073_741_824,
        ge=1,
        description="Request body bytes held at once per worker; 503 past it.",
    )
    retry_after_seconds: int = Field(1, ge=0, description="Retry-After of the overload 503.")
    drain_seconds: float = Field(
        0.0,
        ge=0,
        description="After SIGTERM: seconds /readyz says 503 while still serving, "
        "before the server stops accepting.",
    )
    graceful_timeout_seconds: float = Field(
        30.0, gt=0, description="After draining: how long in-flight requests get to finish."
    )
    keepalive_seconds: int = Field(
        75,
        ge=1,
        description="Idle keep-alive timeout; keep it above the load balancer's (nginx 60 s).",
    )

    body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest wait for the next bytes of a request body; past it a 408 and the "
        "connection is closed.",
    )
    body_min_bytes_per_second: int = Field(
        16_384,
        ge=0,
        description="Once a body has been arriving for body_timeout_seconds, it must average at "
        "least this rate; slower is a 408 (0 turns the rate check off).",
    )
    header_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="A request's line and headers must be complete this long after the connection "
        "opens (or after its first byte, on a kept-alive connection); else the connection closes.",
    )
    max_header_bytes: int = Field(
        65_536, ge=1024, description="Request line plus headers; past it a 431 and a close."
    )
    max_connections: int = Field(
        0,
        ge=0,
        description="Open connections per worker; 0 derives it from the open-file limit (soft "
        "limit - 10 % - 32). At the bound the oldest idle or unfinished connection is closed to "
        "make room.",
    )
    max_work_seconds: float = Field(
        10.0,
        gt=0,
        description="Largest estimated compute of one request, in seconds of one core; past it "
        "a 413 that says what fits.",
    )
    heavy_work_seconds: float = Field(
        0.02,
        ge=0,
        description="Requests estimated above this many seconds of compute (or with bodies that "
        "take that long to decode) run in the heavy lane, so cheap requests never wait behind them.",
    )
    heavy_threads: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 1) // 2),
        ge=1,
        description="Threads of the heavy lane (requests computed there at once per worker).",
    )
    compute_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Deadline of one request's computation; past it the work stops and the "
        "answer is a 504.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


@lru_cache
def get_settings() -> Settings:
    return Settings()
