"""Loss declarations. Importing this package registers every built-in loss."""

from service.losses import binary, categorical, regression  # noqa: F401  (registers on import)
