"""``python -m service [--host H] [--port P] [--workers W] [--grpc-port G]``: serve HTTP with
uvicorn and, in the same worker processes, gRPC on port G (0: no gRPC).

Each flag defaults to its ``LOSS_SERVICE_*`` environment variable (see service/settings.py).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import uvicorn

from service.api.connections.protocol import GuardedHttpToolsProtocol
from service.ops.logs import logging_config
from service.ops.prometheus import MULTIPROCESS_ENV
from service.ops.settings import get_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default=settings.host, help="LOSS_SERVICE_HOST (127.0.0.1)")
    parser.add_argument("--port", type=int, default=settings.port, help="LOSS_SERVICE_PORT (8000)")
    parser.add_argument(
        "--workers", type=int, default=settings.workers, help="LOSS_SERVICE_WORKERS (1)"
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=settings.grpc_port,
        help="LOSS_SERVICE_GRPC_PORT (8001; 0 turns gRPC off)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if not 0 <= args.grpc_port <= 65535:
        parser.error("--grpc-port must be in 0..65535")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = get_settings()
    # Worker processes rebuild settings from the environment: hand them the flags that way.
    os.environ["LOSS_SERVICE_HOST"] = args.host
    os.environ["LOSS_SERVICE_PORT"] = str(args.port)
    os.environ["LOSS_SERVICE_WORKERS"] = str(args.workers)
    os.environ["LOSS_SERVICE_GRPC_PORT"] = str(args.grpc_port)
    get_settings.cache_clear()  # a single worker runs in this process: read them again
    if args.workers > 1 and not os.environ.get(MULTIPROCESS_ENV):
        # Each worker writes its metrics here; /metrics aggregates them (a fresh directory,
        # so no samples survive from an earlier run).
        os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="loss-service-metrics-")
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # uvicorn's httptools protocol plus bounded headers, a header deadline and a bound on
        # open connections (service/connections/); a class importable by path, so it
        # pickles into spawned workers.
        http=GuardedHttpToolsProtocol,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_level),
        access_log=False,  # the front layer writes one JSON line per request instead
        # The peer address is logged as it is; X-Forwarded-For is not trusted (behind nginx,
        # its own log has the client, and X-Request-ID ties the two lines together).
        proxy_headers=False,
        timeout_keep_alive=settings.keepalive_seconds,
        # (annotated int, used as seconds of any kind)
        timeout_graceful_shutdown=settings.graceful_timeout_seconds,  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
