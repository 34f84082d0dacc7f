"""Loss declarations. Importing this package registers every built-in loss."""

from service.losses import (  # noqa: F401  (registers on import)
    binary,
    boxes,
    categorical,
    ctc,
    custom,
    overlap,
    regression,
    sequence,
)
