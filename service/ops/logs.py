"""Logs: JSON lines on stdout, one per request (``service.access``) plus the server's own.

Access lines carry the request id, method, path, route template, loss, status, duration and
body sizes; never tensor contents or headers such as Authorization.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

ACCESS = logging.getLogger("service.access")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = record.created
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            + f".{int(seconds % 1 * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(level: str) -> dict[str, Any]:
    """dictConfig for uvicorn: everything as JSON on stdout; uvicorn's access log is replaced
    by ``service.access`` (the front layer knows the route, loss and request id)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    named = {"handlers": ["stdout"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stdout": handler},
        "loggers": {
            "service": named,
            "uvicorn": named,
            "uvicorn.error": {"level": level.upper()},  # propagates to "uvicorn"
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def access(fields: dict[str, Any]) -> None:
    ACCESS.info(
        "%s %s %s", fields["method"], fields["path"], fields["status"], extra={"fields": fields}
    )
