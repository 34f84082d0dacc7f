"""Benchmarks (``make bench``): figures are ratios to a baseline measured in the same run."""
