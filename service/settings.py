"""All configuration, read once from ``LOSS_SERVICE_*`` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.parallel import default_threads


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOSS_SERVICE_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Interface to bind (--host).")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (--port).")
    workers: int = Field(1, ge=1, description="Worker processes (--workers).")
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
    log_level: str = Field("info", description="uvicorn and service log level.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
