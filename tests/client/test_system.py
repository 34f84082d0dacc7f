"""``loss-eval`` and the Python API against real replicas (``python -m service`` on 127.0.0.1):
the merged result equals one ``/v1/evaluate`` request holding all the data and scikit-learn,
to 1e-12 relative, for files of each format; a replica killed mid-run loses and double-counts
nothing; and the error paths."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from loss_client import Client
from scipy.special import expit, softmax
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from tests.support.paths import ROOT
from tests.system.server import clean_env, fetch, free_port, running
from tests.system.server import replicas as ready_replicas

pytestmark = pytest.mark.system

RELATIVE = 1e-12
BCE = 'binary_cross_entropy:{"from_logits": true}'
F1 = 'f1:{"from_logits": true}'
TERMS = [{"loss": "binary_cross_entropy", "params": {"from_logits": True}}]
METRICS = ["roc_auc", {"name": "f1", "params": {"from_logits": True}}]
TOP_K = 5
CLIENT_TIMEOUT = 300  # s, for one loss-eval run


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[int]]:
    with ready_replicas(2) as ports:
        yield ports


def urls(ports: list[int]) -> list[str]:
    return [f"http://127.0.0.1:{port}" for port in ports]


def loss_eval(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loss_client", *arguments],
        cwd=ROOT,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )


def url_arguments(ports: list[int]) -> list[str]:
    return [argument for url in urls(ports) for argument in ("--url", url)]


def evaluate_whole(port: int, body: dict) -> dict:
    """One /v1/evaluate request holding every sample."""
    status, answer = fetch(port, "POST", "/v1/evaluate", {**body, "include": ["cost"]})
    assert status == 200, answer[:500]
    return json.loads(answer)


def binary_data(samples: int, seed: int, decimals: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, samples)
    if decimals is not None:  # ties, and a roc_auc state that stays small
        logits = np.round(logits, decimals)
    return {
        "logit": logits,
        "label": (rng.random(samples) < expit(0.8 * logits)).astype(np.int64),
        "weight": rng.choice([0.5, 1.0, 2.0], samples),
        "site": rng.choice(np.array(["north", "south", "east"]), samples),
    }


def body_of(data: dict[str, np.ndarray], terms: list, metrics: list, top_k: int | None) -> dict:
    body = {
        "predictions": data["logit"].tolist(),
        "targets": data["label"].tolist(),
        "sample_weight": data["weight"].tolist(),
        "groups": data["site"].tolist(),
        "terms": terms,
        "metrics": metrics,
    }
    if top_k is not None:
        body["top_k"] = top_k
    return body


def write_files(data: dict[str, np.ndarray], kind: str, folder: Path) -> dict[str, str]:
    """The data in one format; the sources that name each array."""
    names = ["logit", "label", "weight", "site"]
    if kind == "npy":
        for name in names:
            np.save(folder / f"{name}.npy", data[name])
        return {name: str(folder / f"{name}.npy") for name in names}
    if kind == "npz":
        np.savez(folder / "data.npz", **data)
        return {name: f"{folder / 'data.npz'}:{name}" for name in names}
    if kind == "csv":
        rows = zip(*(data[name].tolist() for name in names), strict=True)
        # str() of a Python float is its shortest repr: the values come back exactly
        lines = [",".join(names)] + [",".join(str(value) for value in row) for row in rows]
        (folder / "data.csv").write_text("\n".join(lines) + "\n")
        return {name: f"{folder / 'data.csv'}:{name}" for name in names}
    assert kind == "parquet"
    pq.write_table(pa.table({name: data[name] for name in names}), folder / "data.parquet")
    return {name: f"{folder / 'data.parquet'}:{name}" for name in names}


def assert_close(actual: float, expected: float, what: str) -> None:
    assert actual == pytest.approx(expected, rel=RELATIVE, abs=1e-300), what


def assert_terms(merged: dict, whole: dict, where: str) -> None:
    assert merged.keys() == whole.keys(), where
    for label, term in whole.items():
        assert merged[label]["count"] == term["count"], f"{where} {label}"
        for key in ("cost", "sum", "weight_sum"):
            assert_close(merged[label][key], term[key], f"{where} terms.{label}.{key}")


def assert_metrics(merged: dict, whole: dict, where: str) -> None:
    assert merged.keys() == whole.keys(), where
    for name, value in whole.items():
        if value is None:
            assert merged[name] is None, f"{where} {name}"
        else:
            assert_close(merged[name], value, f"{where} metrics.{name}")


def assert_same_as_one_request(merged: dict, whole: dict) -> None:
    """Every number of the merge response equals the one request's, to 1e-12 relative."""
    assert merged["count"] == whole["count"]
    assert_close(merged["cost"], whole["cost"], "cost")
    assert_terms(merged["terms"], whole["terms"], "")
    assert_metrics(merged.get("metrics", {}), whole.get("metrics", {}), "")
    assert merged.get("groups", {}).keys() == whole.get("groups", {}).keys()
    for label, group in whole.get("groups", {}).items():
        mine = merged["groups"][label]
        assert mine["count"] == group["count"], label
        assert_close(mine["weight_sum"], group["weight_sum"], f"groups.{label}.weight_sum")
        assert_close(mine["cost"], group["cost"], f"groups.{label}.cost")
        assert_terms(mine["terms"], group["terms"], f"groups.{label}")
        assert_metrics(mine["metrics"], group["metrics"], f"groups.{label}")
    assert [w["index"] for w in merged.get("top_k", [])] == [
        w["index"] for w in whole.get("top_k", [])
    ]
    for mine, theirs in zip(merged.get("top_k", []), whole.get("top_k", []), strict=True):
        assert_close(mine["value"], theirs["value"], f"top_k {theirs['index']}")


def assert_binary_matches_scikit_learn(merged: dict, data: dict[str, np.ndarray]) -> None:
    logits, labels, weights = data["logit"], data["label"], data["weight"]
    probabilities = expit(logits)
    term = merged["terms"]["binary_cross_entropy"]
    assert_close(term["cost"], log_loss(labels, probabilities, sample_weight=weights), "log_loss")
    assert_close(term["weight_sum"], weights.sum(), "weight_sum")
    if "roc_auc" in merged["metrics"]:
        expected = roc_auc_score(labels, logits, sample_weight=weights)
        assert_close(merged["metrics"]["roc_auc"], expected, "roc_auc")
    predicted = (probabilities >= 0.5).astype(np.int64)
    assert_close(merged["metrics"]["f1"], f1_score(labels, predicted, sample_weight=weights), "f1")
    for label, group in merged["groups"].items():
        inside = data["site"] == label
        assert group["count"] == inside.sum()
        if "roc_auc" in group["metrics"]:
            expected = roc_auc_score(labels[inside], logits[inside], sample_weight=weights[inside])
            assert_close(group["metrics"]["roc_auc"], expected, f"{label} roc_auc")
        expected = log_loss(labels[inside], probabilities[inside], sample_weight=weights[inside])
        assert_close(group["cost"], expected, f"{label} log_loss")
    # The worst samples: BCE from logits per sample, softplus(x) - x y, largest first.
    per_sample = np.logaddexp(0.0, logits) - logits * labels
    order = np.lexsort((np.arange(len(logits)), -per_sample))[: len(merged["top_k"])]
    assert [worst["index"] for worst in merged["top_k"]] == order.tolist()
    for worst in merged["top_k"]:
        assert_close(worst["value"], per_sample[worst["index"]], "top_k value")


@pytest.mark.parametrize("kind", ["npy", "npz", "csv", "parquet"])
def test_loss_eval_on_each_format_equals_one_request_and_scikit_learn(
    replicas: list[int], tmp_path: Path, kind: str
) -> None:
    data = binary_data(2000, seed=14)
    sources = write_files(data, kind, tmp_path)
    output = tmp_path / "result.json"
    completed = loss_eval(
        *url_arguments(replicas),
        "--predictions", sources["logit"], "--targets", sources["label"],
        "--sample-weight", sources["weight"], "--groups", sources["site"],
        "--term", BCE, "--metric", "roc_auc", "--metric", F1, "--top-k", str(TOP_K),
        "--shard-size", "300", "--concurrency", "3", "--output", str(output),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""  # no progress bar: stderr is a pipe
    merged = json.loads(output.read_text())
    whole = evaluate_whole(replicas[0], body_of(data, TERMS, METRICS, TOP_K))
    assert_same_as_one_request(merged, whole)
    assert_binary_matches_scikit_learn(merged, data)
    assert merged["count"] == 2000
    table = completed.stdout.splitlines()
    assert table[0] == f"cost {merged['cost']:.10g}  (mean over 2000 samples, 7 shards)"
    assert any(line.startswith("roc_auc ") for line in table)
    assert any(line.startswith("north ") for line in table)
    assert "top 5 (largest total per-sample loss)" in table


def test_two_terms_and_the_python_api(replicas: list[int]) -> None:
    data = binary_data(1500, seed=3)
    terms = [
        TERMS[0],
        {"loss": "dice", "params": {"mode": "binary", "from_logits": True}, "weight": 0.5},
    ]
    result = Client(urls(replicas)).evaluate(
        data["logit"], data["label"], terms=terms, metrics=METRICS,
        sample_weight=data["weight"], groups=data["site"], top_k=3,
        shard_size=128, concurrency=4, progress=False,
    )  # fmt: skip
    whole = evaluate_whole(replicas[1], body_of(data, terms, METRICS, 3))
    assert_same_as_one_request(result.raw, whole)
    assert result.shards == 12
    dice = result.terms["dice"]
    assert (dice.loss, dice.weight, dice.count) == ("dice", 0.5, 1500)
    total = sum(term.weight * term.cost for term in result.terms.values())
    assert_close(result.cost, total, "cost = sum of weight * cost")
    assert result.groups["east"].count == int((data["site"] == "east").sum())
    assert [worst.index for worst in result.top_k] == [w["index"] for w in whole["top_k"]]


def test_multiclass_against_scikit_learn(replicas: list[int]) -> None:
    rng = np.random.default_rng(5)
    samples, classes = 3000, 4
    logits = rng.normal(0.0, 2.0, (samples, classes))
    labels = np.array([rng.choice(classes, p=p) for p in softmax(logits, axis=1)])
    weights = rng.uniform(0.1, 3.0, samples)
    groups = rng.integers(0, 3, samples)
    terms = [{"loss": "sparse_categorical_cross_entropy", "params": {"from_logits": True}}]
    metrics = [
        "accuracy",
        {"name": "f1", "params": {"average": "macro"}},
        {"name": "precision", "params": {"average": "weighted"}},
        {"name": "recall", "params": {"average": "micro"}},
    ]
    result = Client(urls(replicas)).evaluate(
        logits, labels, terms=terms, metrics=metrics, sample_weight=weights, groups=groups,
        shard_size=250, concurrency=3, progress=False,
    )  # fmt: skip
    body = {
        "predictions": logits.tolist(), "targets": labels.tolist(),
        "sample_weight": weights.tolist(), "groups": groups.tolist(),
        "terms": terms, "metrics": metrics,
    }  # fmt: skip
    assert_same_as_one_request(result.raw, evaluate_whole(replicas[0], body))
    guess = logits.argmax(axis=1)
    expected = {
        "accuracy": accuracy_score(labels, guess, sample_weight=weights),
        "f1": f1_score(labels, guess, average="macro", sample_weight=weights),
        "precision": precision_score(labels, guess, average="weighted", sample_weight=weights),
        "recall": recall_score(labels, guess, average="micro", sample_weight=weights),
    }
    for name, value in expected.items():
        assert_close(result.metrics[name], value, name)
    cross_entropy = log_loss(labels, softmax(logits, axis=1), sample_weight=weights)
    assert_close(result.cost, cross_entropy, "log_loss")
    assert sorted(result.groups) == ["0", "1", "2"]


def test_regression_with_a_large_mean_against_scikit_learn(replicas: list[int]) -> None:
    rng = np.random.default_rng(9)
    targets = 1e3 + 5.0 * rng.normal(size=(4000, 2))
    predictions = targets + rng.normal(0.0, 2.0, size=(4000, 2))
    weights = rng.uniform(0.5, 2.0, 4000)
    result = Client(urls(replicas)).evaluate(
        predictions, targets, terms=["mse", {"loss": "mae", "weight": 0.1}],
        metrics=["r2", "rmse", "mae"], sample_weight=weights, shard_size=333, progress=False,
    )  # fmt: skip
    entry_weights = np.repeat(weights, 2)
    flat_targets, flat_predictions = targets.ravel(), predictions.ravel()
    expected = {
        "r2": r2_score(flat_targets, flat_predictions, sample_weight=entry_weights),
        "rmse": mean_squared_error(flat_targets, flat_predictions, sample_weight=entry_weights)
        ** 0.5,
        "mae": mean_absolute_error(flat_targets, flat_predictions, sample_weight=entry_weights),
    }
    for name, value in expected.items():
        assert_close(result.metrics[name], value, name)
    assert_close(result.terms["mse"].cost, expected["rmse"] ** 2, "mse")
    assert_close(result.terms["mae"].cost, expected["mae"], "mae")


def test_a_replica_killed_mid_run_loses_and_double_counts_nothing(tmp_path: Path) -> None:
    """120 shards over two replicas; once the first has answered 5, it is SIGKILLed (its
    process group). Shards in flight there, and those the round-robin gives it later, go to
    the other: the result equals one request, every sample counted once."""
    samples, shard_size = 60_000, 500
    data = binary_data(samples, seed=21, decimals=2)
    sources = write_files(data, "npy", tmp_path)
    output = tmp_path / "result.json"
    ports = [free_port(), free_port()]
    with (
        running(["--port", str(ports[0])], clean_env()) as doomed,
        running(["--port", str(ports[1])], clean_env()) as survivor,
    ):
        for server in (doomed, survivor):
            server.wait_ready()
        client = subprocess.Popen(
            [
                sys.executable, "-m", "loss_client", *url_arguments(ports),
                "--predictions", sources["logit"], "--targets", sources["label"],
                "--sample-weight", sources["weight"], "--groups", sources["site"],
                "--term", BCE, "--metric", "roc_auc", "--metric", F1, "--top-k", "10",
                "--shard-size", str(shard_size), "--concurrency", "4",
                "--output", str(output),
            ],
            cwd=ROOT, env=clean_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            doomed.wait_for("POST /v1/evaluate 200", count=5)
            os.killpg(doomed.process.pid, signal.SIGKILL)
            _, stderr = client.communicate(timeout=CLIENT_TIMEOUT)
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
        assert client.returncode == 0, stderr
        whole = evaluate_whole(ports[1], body_of(data, TERMS, METRICS, 10))
        doomed.stop()
        survivor.stop()
    assert doomed.process.returncode == -signal.SIGKILL
    merged = json.loads(output.read_text())
    assert merged["count"] == samples
    assert_same_as_one_request(merged, whole)
    assert_binary_matches_scikit_learn(merged, data)
    shards = samples // shard_size
    answered = [
        sum("POST /v1/evaluate 200" in line for line in server.lines)
        for server in (doomed, survivor)
    ]
    # the first died well before its round-robin half; the other took the rest (a shard the
    # first answered as it died may have been answered again: counted once all the same)
    assert 5 <= answered[0] < shards // 2
    assert answered[1] >= shards - answered[0]
    assert answered[1] - 1 > shards // 2  # (the whole request is one of its answers)


def test_an_unknown_loss_exits_with_the_service_detail(replicas: list[int], tmp_path: Path) -> None:
    data = binary_data(400, seed=1)
    sources = write_files(data, "npy", tmp_path)
    completed = loss_eval(
        *url_arguments(replicas), "--predictions", sources["logit"],
        "--targets", sources["label"], "--term", "binary_cross_entropyy", "--shard-size", "100",
    )  # fmt: skip
    status, answer = fetch(
        replicas[0],
        "POST",
        "/v1/evaluate",
        {
            "predictions": data["logit"].tolist(),
            "targets": data["label"].tolist(),
            "terms": [{"loss": "binary_cross_entropyy"}],
        },
    )
    detail = json.loads(answer)["detail"]
    assert status in (404, 422) and "binary_cross_entropy" in detail
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert completed.stderr.startswith(f"loss-eval: error: {detail} (HTTP {status} from ")
    assert completed.stderr.count("\n") == 1


def test_mismatched_lengths_fail_before_any_request(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.zeros(1000))
    np.save(tmp_path / "y.npy", np.zeros(999))
    with socket.socket() as bound:  # bound, not listening: a request would be refused
        bound.bind(("127.0.0.1", 0))
        completed = loss_eval(
            "--url", f"http://127.0.0.1:{bound.getsockname()[1]}",
            "--predictions", str(tmp_path / "p.npy"), "--targets", str(tmp_path / "y.npy"),
            "--term", "mse",
        )  # fmt: skip
    assert completed.returncode == 1
    assert completed.stderr == (
        "loss-eval: error: predictions has 1000 samples but targets has 999\n"
    )


def test_a_non_finite_value_is_named_before_it_is_sent(replicas: list[int], tmp_path: Path) -> None:
    predictions = np.zeros((50, 2))
    predictions[31, 1] = np.inf
    np.save(tmp_path / "p.npy", predictions)
    np.save(tmp_path / "y.npy", np.zeros((50, 2)))
    completed = loss_eval(
        *url_arguments(replicas), "--predictions", str(tmp_path / "p.npy"),
        "--targets", str(tmp_path / "y.npy"), "--term", "mse", "--shard-size", "20",
    )  # fmt: skip
    assert completed.returncode == 1
    assert completed.stderr.startswith(
        f"loss-eval: error: predictions ({tmp_path / 'p.npy'}) has a non-finite value (inf) at "
        "index (31, 1);"
    )


def test_the_api_key(replicas: list[int], tmp_path: Path) -> None:
    data = binary_data(500, seed=2)
    sources = write_files(data, "npy", tmp_path)
    port = free_port()
    arguments = [
        "--url", f"http://127.0.0.1:{port}", "--predictions", sources["logit"],
        "--targets", sources["label"], "--term", BCE, "--shard-size", "200",
        "--output", str(tmp_path / "result.json"),
    ]  # fmt: skip
    with running(["--port", str(port)], clean_env(LOSS_SERVICE_API_KEYS="k-one,k-two")) as keyed:
        keyed.wait_ready()
        refused = loss_eval(*arguments)
        accepted = loss_eval(*arguments, "--api-key", "k-two")
    assert refused.returncode == 1
    assert refused.stderr.startswith("loss-eval: error: ") and "HTTP 401" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    merged = json.loads((tmp_path / "result.json").read_text())
    whole = evaluate_whole(
        replicas[0],
        {"predictions": data["logit"].tolist(), "targets": data["label"].tolist(), "terms": TERMS},
    )
    assert merged["count"] == 500
    assert_close(merged["cost"], whole["cost"], "cost")


def test_roc_auc_of_many_distinct_scores(replicas: list[int]) -> None:
    """20,000 continuous scores and 3 slices: states of ~80,000 numbers, merged in a tree of
    fan-in 4 (the client's default is 32)."""
    data = binary_data(20_000, seed=8)
    result = Client(urls(replicas)).evaluate(
        data["logit"], data["label"], terms=TERMS, metrics=METRICS, sample_weight=data["weight"],
        groups=data["site"], top_k=TOP_K, shard_size=1000, progress=False, fan_in=4,
    )  # fmt: skip
    assert result.shards == 20
    whole = evaluate_whole(replicas[0], body_of(data, TERMS, METRICS, TOP_K))
    assert_same_as_one_request(result.raw, whole)
    assert_binary_matches_scikit_learn(result.raw, data)


def test_the_readme_example_on_breast_cancer(replicas: list[int], tmp_path: Path) -> None:
    """examples/client_breast_cancer.py saves a model's held-out logits; the command it prints
    gives scikit-learn's numbers."""
    url = urls(replicas)[0]
    prepared = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "client_breast_cancer.py"),
         "--out", str(tmp_path), "--url", url],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
        check=True,
    )  # fmt: skip
    printed = prepared.stdout.splitlines()
    words = shlex.split(printed[-1])
    assert words[0] == "loss-eval"
    completed = loss_eval(*words[1:], "--output", str(tmp_path / "result.json"))
    assert completed.returncode == 0, completed.stderr
    merged = json.loads((tmp_path / "result.json").read_text())
    logits, labels = np.load(tmp_path / "logits.npy"), np.load(tmp_path / "labels.npy")
    assert merged["count"] == len(labels) == 285
    assert_close(merged["cost"], log_loss(labels, expit(logits)), "log_loss")
    assert_close(merged["metrics"]["roc_auc"], roc_auc_score(labels, logits), "roc_auc")
    assert_close(merged["metrics"]["f1"], f1_score(labels, (logits >= 0).astype(int)), "f1")
    assert sorted(merged["groups"]) == ["large", "small"]
    for line, (name, value) in zip(
        printed[1:4], [("log_loss", merged["cost"]), *merged["metrics"].items()], strict=True
    ):
        assert line.split() == [name, f"{value:.10g}"]
