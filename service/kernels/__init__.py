"""Numba kernels: the numerical core, and nothing else.

Every kernel takes flat float64 arrays and a per-element gradient ``scale`` and returns
``(element_losses, gradient)`` in one pass, where ``gradient = scale * d element_loss / d input``
(a vector-Jacobian product). An empty ``scale`` means "no gradient wanted" and the kernel
returns an empty gradient. Kernels import only numpy and numba: they never validate, never
raise on user input and never read settings; the layers above do that.
"""
