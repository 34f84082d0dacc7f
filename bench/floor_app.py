"""The floor for the JSON path: a bare ASGI app, no framework and no validation, that decodes
with orjson, converts to NumPy, computes MSE's per-sample losses, cost and gradient, and
encodes the same response with orjson. Nothing can be faster with JSON bodies."""

from __future__ import annotations

import numpy as np
import orjson


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":  # readiness probe of the benchmark
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    document = orjson.loads(b"".join(chunks))
    predictions = np.asarray(document["predictions"], dtype=np.float64)
    targets = np.asarray(document["targets"], dtype=np.float64)
    difference = predictions - targets
    losses = difference * difference
    per_sample = losses.reshape(losses.shape[0], -1).mean(axis=1)
    body = orjson.dumps(
        {
            "loss": "mse",
            "reduction": "mean",
            "cost": float(losses.mean()),
            "per_sample": per_sample,
            "gradient": (2.0 / difference.size) * difference,
            "sum": float(losses.sum()),
            "weight_sum": float(difference.size),
            "count": int(predictions.shape[0]),
            "extras": {},
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
