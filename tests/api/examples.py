"""Request bodies several API test modules start from, with their results by hand."""

from __future__ import annotations

#: Keys that every 200 carries, whatever ``include`` asks for (merging needs them).
ALWAYS_KEYS = {"loss", "reduction", "sum", "weight_sum", "count", "extras"}
ALL_KEYS = ALWAYS_KEYS | {"cost", "per_sample", "gradient"}
#: The brief's example: element losses (p - y)^2 = [[0, 1], [4, 9]].
MSE_WEIGHTED_BODY = {
    "predictions": [[1, 2], [3, 4]],
    "targets": [[1, 1], [1, 1]],
    "sample_weight": [1, 3],
}
MSE_WEIGHTED_RESULT = {
    "loss": "mse",
    "reduction": "mean",
    "per_sample": [0.5, 6.5],  # (0 + 1) / 2 and (4 + 9) / 2, without the sample's own weight
    "sum": 40.0,  # 1 * (0 + 1) + 3 * (4 + 9)
    "weight_sum": 8.0,  # 1 * 2 elements + 3 * 2 elements
    "cost": 5.0,  # 40 / 8
    # w_e / W * 2 (p - y): [[1/8 * 0, 1/8 * 2], [3/8 * 4, 3/8 * 6]]
    "gradient": [[0.0, 0.25], [1.5, 2.25]],
    "count": 2,
}
SEGMENT = {
    "predictions": [[[0.1, 0.2], [0.2, 0.2], [0.7, 0.6]]],
    "targets": [[[0, 0], [0, 1], [1, 0]]],
}
