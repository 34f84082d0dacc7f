#!/usr/bin/env python3
"""Score a data set too large for one request: split it into shards, send them concurrently
(to one service or to many replicas), and merge the answers exactly.

    python examples/shard_client.py --url http://127.0.0.1:8000 [--url http://other:8000 ...]
        [--loss huber] [--params '{"delta": 0.5}'] [--samples 100000] [--shard-size 10000]
        [--concurrency 4] [--seed 0]

Each shard is sent with "reduction": "sum", so every answer is additive:

    cost     = sum over shards of `sum`     / sum over shards of `weight_sum`   (the mean)
    gradient = each shard's gradient        / sum over shards of `weight_sum`   (in order)
    per_sample: the shards' lists, concatenated in order

This is exactly the mean cost and gradient of one request holding the whole data set (the
weights of API.md do not depend on the other samples). The script uses the standard library
only, so it runs wherever Python 3.11+ does; the data set here is random, to replace with
your own arrays.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle


def post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=120) as response:
        return json.load(response)


def make_data(samples: int, width: int, seed: int) -> tuple[list, list, list]:
    """Random predictions, targets and sample weights: replace with your own data."""
    generator = random.Random(seed)
    predictions = [[generator.gauss(0, 1) for _ in range(width)] for _ in range(samples)]
    targets = [[generator.gauss(0, 1) for _ in range(width)] for _ in range(samples)]
    weights = [generator.choice([0.5, 1.0, 2.0]) for _ in range(samples)]
    return predictions, targets, weights


def score_sharded(
    urls: list[str],
    loss: str,
    params: dict,
    predictions: list,
    targets: list,
    sample_weight: list,
    shard_size: int,
    concurrency: int,
) -> dict:
    """The merged mean cost, gradient and per-sample losses of the whole data set."""
    starts = range(0, len(predictions), shard_size)
    bodies = [
        {
            "predictions": predictions[start : start + shard_size],
            "targets": targets[start : start + shard_size],
            "sample_weight": sample_weight[start : start + shard_size],
            "params": params,
            "reduction": "sum",
        }
        for start in starts
    ]
    replicas = cycle(urls)
    jobs = [(next(replicas), body) for body in bodies]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(lambda job: post(job[0], f"/v1/losses/{loss}", job[1]), jobs))
    total = sum(answer["sum"] for answer in answers)
    weight_sum = sum(answer["weight_sum"] for answer in answers)
    scale = 1.0 / weight_sum if weight_sum > 0 else 0.0
    return {
        "cost": total * scale,
        "sum": total,
        "weight_sum": weight_sum,
        "count": sum(answer["count"] for answer in answers),
        "shards": len(answers),
        "per_sample": [value for answer in answers for value in answer["per_sample"]],
        "gradient": [
            [value * scale for value in row] for answer in answers for row in answer["gradient"]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", action="append", required=True, help="a replica; repeatable")
    parser.add_argument("--loss", default="mse")
    parser.add_argument("--params", default="{}", help="the loss's params as JSON")
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--width", type=int, default=8, help="entries per sample")
    parser.add_argument("--shard-size", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    predictions, targets, weights = make_data(args.samples, args.width, args.seed)
    merged = score_sharded(
        args.url,
        args.loss,
        json.loads(args.params),
        predictions,
        targets,
        weights,
        args.shard_size,
        args.concurrency,
    )
    summary = {key: merged[key] for key in ("cost", "sum", "weight_sum", "count", "shards")}
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
