"""The sharding example client, against two real replicas started here on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from tests.support.paths import ROOT
from tests.system.server import clean_env
from tests.system.server import replicas as ready_replicas

EXAMPLE = ROOT / "examples" / "shard_client.py"

pytestmark = pytest.mark.system


def load_example():
    spec = importlib.util.spec_from_file_location("shard_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[str]]:
    """Two service processes: the shards are spread over both."""
    with ready_replicas(2) as ports:
        yield [f"http://127.0.0.1:{port}" for port in ports]


@pytest.mark.parametrize(
    ("loss", "params"), [("mse", {}), ("huber", {"delta": 0.5}), ("log_cosh", {})]
)
def test_sharded_result_equals_one_request(replicas: list[str], loss: str, params: dict) -> None:
    client = load_example()
    predictions, targets, weights = client.make_data(samples=203, width=3, seed=7)
    merged = client.score_sharded(
        replicas, loss, params, predictions, targets, weights, shard_size=40, concurrency=3
    )
    whole = client.post(
        replicas[0],
        f"/v1/losses/{loss}",
        {
            "predictions": predictions,
            "targets": targets,
            "sample_weight": weights,
            "params": params,
        },
    )
    assert merged["shards"] == 6  # 203 samples in shards of 40
    assert merged["count"] == whole["count"] == 203
    assert merged["weight_sum"] == pytest.approx(whole["weight_sum"], rel=1e-12)
    assert merged["cost"] == pytest.approx(whole["cost"], rel=1e-12)
    np.testing.assert_allclose(merged["per_sample"], whole["per_sample"], rtol=1e-12)
    np.testing.assert_allclose(merged["gradient"], whole["gradient"], rtol=1e-9, atol=1e-18)


def test_the_script_prints_the_merged_summary(replicas: list[str]) -> None:
    arguments = [sys.executable, str(EXAMPLE), "--samples", "500", "--shard-size", "120"]
    for url in replicas:
        arguments += ["--url", url]
    completed = subprocess.run(
        arguments, capture_output=True, text=True, timeout=120, check=True, env=clean_env()
    )
    summary = json.loads(completed.stdout)
    assert summary["shards"] == 5
    assert summary["count"] == 500
    assert summary["cost"] == pytest.approx(summary["sum"] / summary["weight_sum"], rel=1e-15)
