"""loss-service: predictions and targets in; per-sample losses, cost and exact gradients out."""

from service.ops import cpu as _cpu

__version__ = "0.1.0"

# Before any module of the package imports numba: in an image with one kernel cache per CPU
# level (LOSS_KERNEL_CACHES), point numba at the best one this host runs (service/ops/cpu.py).
_cpu.configure()
