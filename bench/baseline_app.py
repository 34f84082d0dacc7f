"""The small-request baseline: what a plain FastAPI service would be: a Pydantic model with
``list[float]`` fields (validated float by float), NumPy for the loss, FastAPI's own response."""

from __future__ import annotations

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class MseRequest(BaseModel):
    predictions: list[float]
    targets: list[float]


@app.post("/v1/losses/mse")
def mse(request: MseRequest) -> dict:
    predictions = np.asarray(request.predictions)
    difference = predictions - np.asarray(request.targets)
    losses = difference * difference
    return {
        "loss": "mse",
        "reduction": "mean",
        "cost": float(losses.mean()),
        "per_sample": losses.tolist(),
        "gradient": ((2.0 / difference.size) * difference).tolist(),
        "sum": float(losses.sum()),
        "weight_sum": float(difference.size),
        "count": int(difference.size),
        "extras": {},
    }
