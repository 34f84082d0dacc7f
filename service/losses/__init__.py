"""Loss declarations. Importing this package registers every built-in loss."""

from service.losses import regression  # noqa: F401  (registers on import)
