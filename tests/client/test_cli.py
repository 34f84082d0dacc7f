"""``loss-eval`` end to end against scripted local servers: what is sent where, what is printed
and written, and the exit status of each error path. The numbers are the fake's, so only the
plumbing is checked here; tests/client/test_system.py checks numbers against the real service."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from loss_client import cli
from loss_client.client import Client
from loss_client.progress import Progress
from loss_client.report import render
from loss_client.result import Result

from tests.client.fake_service import Received, Reply, problem, refusing_url, serving

MERGED = {
    "reduction": "mean",
    "cost": 0.75,
    "count": 10,
    "terms": {
        "mse": {"loss": "mse", "weight": 1.0, "cost": 0.75, "sum": 7.5, "weight_sum": 10.0,
                "count": 10},
    },
    "metrics": {"r2": 0.5, "roc_auc": None},
    "undefined": {"roc_auc": "one class only"},
    "groups": {
        "a": {"count": 6, "weight_sum": 6.0, "cost": 0.5,
              "terms": {"mse": {"cost": 0.5, "sum": 3.0, "weight_sum": 6.0, "count": 6}},
              "metrics": {"r2": 0.25, "roc_auc": None}, "undefined": {"roc_auc": "one class"}},
        "b": {"count": 4, "weight_sum": 4.0, "cost": 1.125,
              "terms": {"mse": {"cost": 1.125, "sum": 4.5, "weight_sum": 4.0, "count": 4}},
              "metrics": {"r2": 0.75, "roc_auc": 1.0}},
    },
    "top_k": [{"index": 7, "value": 3.5}, {"index": 2, "value": 2.0}],
    "state": {"opaque": True},
}  # fmt: skip


def fake_answer(request: Received) -> Reply:
    """Evaluate: a state that names the shard (its offset); merge: the canned result, whose
    state lists the offsets merged."""
    if request.path == "/v1/evaluate":
        return Reply(200, {"cost": 0.0, "state": {"offsets": [request.body["offset"]]}})
    assert request.path == "/v1/evaluate/merge"
    offsets = [offset for state in request.body["states"] for offset in state["offsets"]]
    return Reply(200, {**MERGED, "state": {"offsets": offsets}})


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    rng = np.random.default_rng(3)
    np.save(tmp_path / "p.npy", rng.normal(size=10))
    np.save(tmp_path / "y.npy", rng.normal(size=10))
    np.save(tmp_path / "short.npy", rng.normal(size=9))
    return {name: str(tmp_path / f"{name}.npy") for name in ("p", "y", "short")}


def run(capsys: pytest.CaptureFixture, *arguments: str) -> tuple[int, str, str]:
    status = cli.main(list(arguments))
    out, err = capsys.readouterr()
    return status, out, err


def test_a_run_spreads_shards_and_merges_them(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "result.json"
    with serving(otherwise=fake_answer) as first, serving(otherwise=fake_answer) as second:
        status, out, err = run(
            capsys,
            "--url", first.url, "--url", second.url + "/",
            "--predictions", files["p"], "--targets", files["y"],
            "--term", "mse", "--metric", "r2", "--top-k", "2",
            "--shard-size", "3", "--concurrency", "2", "--output", str(output),
        )  # fmt: skip
    assert (status, err) == (0, "")  # no progress bar: stderr is not a terminal
    evaluated = [r for s in (first, second) for r in s.received if r.path == "/v1/evaluate"]
    assert sorted(r.body["offset"] for r in evaluated) == [0, 3, 6, 9]
    assert sorted(r.body["offset"] for r in first.received if r.path == "/v1/evaluate") == [0, 6]
    assert all(r.body["top_k"] == 2 and r.body["metrics"] == ["r2"] for r in evaluated)
    merges = [r for s in (first, second) for r in s.received if r.path == "/v1/evaluate/merge"]
    assert len(merges) == 1
    # each shard's state exactly once, in shard order
    assert [state["offsets"] for state in merges[0].body["states"]] == [[0], [3], [6], [9]]
    written = json.loads(output.read_text())
    assert written == {**MERGED, "state": {"offsets": [0, 3, 6, 9]}}
    assert out.splitlines()[0] == "cost 0.75  (mean over 10 samples, 4 shards)"
    assert "top 2 (largest total per-sample loss)" in out


def test_a_dead_url_is_skipped(files: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    with refusing_url() as dead, serving(otherwise=fake_answer) as alive:
        status, _, err = run(
            capsys,
            "--url", dead, "--url", alive.url,
            "--predictions", files["p"], "--targets", files["y"], "--term", "mse",
            "--shard-size", "2",
        )  # fmt: skip
    assert (status, err) == (0, "")
    offsets = sorted(r.body["offset"] for r in alive.received if r.path == "/v1/evaluate")
    assert offsets == [0, 2, 4, 6, 8]


def test_mismatched_lengths_fail_before_any_request(
    files: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    with serving() as service:
        status, out, err = run(
            capsys,
            "--url", service.url, "--predictions", files["p"], "--targets", files["short"],
            "--term", "mse",
        )  # fmt: skip
    assert service.received == []
    assert status == 1 and out == ""
    assert err == "loss-eval: error: predictions has 10 samples but targets has 9\n"


def test_the_service_detail_is_the_error_line(
    files: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    detail = "terms[0].loss: unknown loss 'msee'; did you mean 'mse'?"
    with serving([problem(422, detail)]) as service:
        status, out, err = run(
            capsys,
            "--url", service.url, "--predictions", files["p"], "--targets", files["y"],
            "--term", "msee", "--shard-size", "100",
        )  # fmt: skip
    assert len(service.received) == 1  # never retried
    assert status == 1 and out == ""
    assert err == f"loss-eval: error: {detail} (HTTP 422 from {service.url}/v1/evaluate)\n"


def test_unreadable_input_and_output(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    status, _, err = run(
        capsys, "--url", "http://127.0.0.1:9", "--predictions", files["p"],
        "--targets", f"{tmp_path}/none.csv:y", "--term", "mse",
    )  # fmt: skip
    assert (status, err) == (1, f"loss-eval: error: {tmp_path}/none.csv: no such file\n")
    status, _, err = run(
        capsys, "--url", "http://127.0.0.1:9", "--predictions", files["p"],
        "--targets", files["y"], "--term", "mse", "--output", f"{tmp_path}/no/dir/r.json",
    )  # fmt: skip
    assert status == 2 and "no such directory" in err


def test_the_api_key_reaches_every_request(files: dict[str, str]) -> None:
    with serving(otherwise=fake_answer) as service:
        Client(service.url, api_key="k1").evaluate(
            files["p"], files["y"], terms="mse", shard_size=4, progress=False
        )
    assert len(service.received) == 4  # 3 shards and a merge
    assert {r.headers["authorization"] for r in service.received} == {"Bearer k1"}


def test_the_table() -> None:
    text = render(Result.from_json(MERGED, shards=4))
    assert text.splitlines() == [
        "cost 0.75  (mean over 10 samples, 4 shards)",
        "",
        "term  loss  weight  cost  sum  weight_sum  count",
        "mse   mse        1  0.75  7.5          10     10",
        "",
        "metric       value",
        "r2             0.5",
        "roc_auc  undefined",
        "  roc_auc: one class only",
        "",
        "slice  count  weight_sum   cost    r2    roc_auc",
        "a          6           6    0.5  0.25  undefined",
        "b          4           4  1.125  0.75          1",
        "  a roc_auc: one class",
        "",
        "top 2 (largest total per-sample loss)",
        "index  value",
        "7        3.5",
        "2          2",
    ]


def test_the_typed_result() -> None:
    result = Result.from_json(MERGED, shards=4)
    assert result.terms["mse"].sum == 7.5 and result.terms["mse"].loss == "mse"
    assert result.metrics == {"r2": 0.5, "roc_auc": None}
    assert result.groups["b"].terms["mse"].weight_sum == 4.0
    assert result.groups["b"].undefined == {}
    assert [(worst.index, worst.value) for worst in result.top_k] == [(7, 3.5), (2, 2.0)]
    assert result.state == {"opaque": True} and result.raw is MERGED


def test_the_progress_bar_counts_shards_and_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr("sys.stderr", screen)
    with Progress(250, 3, enabled=True) as bar:
        for size in (100, 100, 50):
            bar.shard_done(size)
    shown = screen.getvalue()
    assert "shards 3/3" in shown and "250/250" in shown
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stderr", quiet)
    with Progress(250, 3, enabled=False) as bar:
        bar.shard_done(250)
    assert quiet.getvalue() == ""
