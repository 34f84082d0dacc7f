"""``python -m loss_client``: the ``loss-eval`` command."""

import sys

from loss_client.cli import main

sys.exit(main())
