"""One weighted mse request and its result by hand, shared by the tests of the server and of
the operations routes.
"""

from __future__ import annotations

MSE_BODY = {
    "predictions": [[1.0, 2.0], [3.0, 5.0]],
    "targets": [[1.5, 2.0], [2.0, 3.0]],
    "sample_weight": [1.0, 3.0],
}
# errors p - y: [[-0.5, 0], [1, 2]]; squares [[0.25, 0], [1, 4]]; element weights [[1, 1], [3, 3]]
# sum = 0.25 + 0 + 3 + 12 = 15.25, weight_sum = 8, cost = 15.25 / 8 = 1.90625;
# per_sample: unweighted means of each row = [0.125, 2.5]; gradient = w * 2 (p - y) / 8.
MSE_EXPECTED = {
    "loss": "mse",
    "reduction": "mean",
    "cost": 1.90625,
    "per_sample": [0.125, 2.5],
    "gradient": [[-0.125, 0.0], [0.75, 1.5]],
    "sum": 15.25,
    "weight_sum": 8.0,
    "count": 2,
}
