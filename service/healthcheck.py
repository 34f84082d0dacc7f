"""``python -m service.healthcheck``: exit 0 when the local service is ready (for HEALTHCHECK).

Reads the port from ``LOSS_SERVICE_PORT`` like the server does, so the container's
healthcheck follows the same setting; no curl needed in a slim image.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from service.settings import get_settings


def main() -> int:
    url = f"http://127.0.0.1:{get_settings().port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
