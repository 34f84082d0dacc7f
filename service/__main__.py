"""``python -m service [--host H] [--port P] [--workers W]``: serve with uvicorn.

Each flag defaults to its ``LOSS_SERVICE_*`` environment variable (see service/settings.py).
"""

from __future__ import annotations

import argparse
import copy
import os

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from service.settings import get_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default=settings.host, help="LOSS_SERVICE_HOST (127.0.0.1)")
    parser.add_argument("--port", type=int, default=settings.port, help="LOSS_SERVICE_PORT (8000)")
    parser.add_argument(
        "--workers", type=int, default=settings.workers, help="LOSS_SERVICE_WORKERS (1)"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    return args


def logging_config(level: str) -> dict:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["service"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = get_settings()
    # Worker processes rebuild settings from the environment: hand them the flags that way.
    os.environ["LOSS_SERVICE_HOST"] = args.host
    os.environ["LOSS_SERVICE_PORT"] = str(args.port)
    os.environ["LOSS_SERVICE_WORKERS"] = str(args.workers)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings.log_level),
    )


if __name__ == "__main__":
    main()
