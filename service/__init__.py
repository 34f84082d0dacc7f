"""loss-service: predictions and targets in; per-sample losses, cost and exact gradients out."""

__version__ = "0.1.0"
