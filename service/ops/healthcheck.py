"""``python -m service.ops.healthcheck``: exit 0 when the local service is ready (for HEALTHCHECK).

Reads the port from ``LOSS_SERVICE_PORT`` like the server does, so the container's
healthcheck follows the same setting; no curl needed in a slim image. Uses ``http.client``
directly: urllib would route 127.0.0.1 through an ``HTTP_PROXY`` that Docker passes in.
"""

from __future__ import annotations

import http.client
import sys

from service.ops.settings import get_settings


def main() -> int:
    connection = http.client.HTTPConnection("127.0.0.1", get_settings().port, timeout=3)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        response.read()
        return 0 if response.status == 200 else 1
    except OSError:
        return 1
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
