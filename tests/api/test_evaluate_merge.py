"""``"state": true`` and ``POST /v1/evaluate/merge``: the merge of shards' states is the answer
for the whole data set, equal to one request holding everything and to scikit-learn, whatever
the cut points, the order and the grouping of the merges (Hypothesis over both)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as sk

RELATIVE = 1e-12


def evaluate(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/evaluate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def merge(client: TestClient, states: list[dict], **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/evaluate/merge", json={"states": states, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def shard_bodies(arrays: dict[str, np.ndarray], cuts: list[int], **fixed: Any) -> list[dict]:
    n = len(next(iter(arrays.values())))
    edges = [0, *sorted(set(cuts)), n]
    bodies = []
    for start, stop in itertools.pairwise(edges):
        if stop <= start:
            continue
        body = {name: values[start:stop].tolist() for name, values in arrays.items()}
        bodies.append({**body, **fixed, "state": True, "include": ["cost"], "offset": start})
    return bodies


def assert_close(ours: Any, theirs: Any, path: str = "") -> None:
    """Every number of ``ours`` equals ``theirs`` to RELATIVE (same keys, same nulls)."""
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs), path
        for key in theirs:
            assert_close(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), path
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_close(a, b, f"{path}[{index}]")
    elif isinstance(theirs, float):
        assert math.isclose(ours, theirs, rel_tol=RELATIVE, abs_tol=1e-15), (path, ours, theirs)
    else:
        assert ours == theirs, path


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """The parts a merge and a whole request share."""
    keys = ("reduction", "cost", "count", "metrics", "groups", "top_k", "undefined")
    body = {key: answer[key] for key in keys if key in answer}
    body["terms"] = {
        label: {k: term[k] for k in ("loss", "weight", "cost", "sum", "weight_sum", "count")}
        for label, term in answer["terms"].items()
    }
    return body


RNG = np.random.default_rng(20261205)
N = 240
SCORES = np.round(RNG.uniform(0.02, 0.98, N), 2)  # rounded: many tied scores
BINARY = {
    "predictions": SCORES,
    "targets": (RNG.uniform(size=N) < SCORES).astype(float),
    "sample_weight": RNG.uniform(0.2, 3.0, N).round(3),
}
BINARY_BODY = {
    "terms": [{"loss": "binary_cross_entropy"}, {"loss": "mse", "weight": 0.25}],
    "metrics": ["accuracy", "precision", "recall", "f1", "roc_auc", "r2", "rmse", "mae"],
    "top_k": 7,
    "groups": None,
}


def test_binary_merge_equals_scikit_learn_and_the_whole(client: TestClient) -> None:
    body = {k: v for k, v in BINARY_BODY.items() if k != "groups"}
    bodies = shard_bodies(BINARY, [17, 60, 61, 150], **body)
    states = [evaluate(client, shard)["state"] for shard in bodies]
    merged = merge(client, states)
    whole = evaluate(client, {**{k: v.tolist() for k, v in BINARY.items()}, **body})
    assert_close(comparable(merged), comparable(whole))
    p, t, w = BINARY["predictions"], BINARY["targets"], BINARY["sample_weight"]
    expected = {
        "accuracy": sk.accuracy_score(t, p >= 0.5, sample_weight=w),
        "precision": sk.precision_score(t, p >= 0.5, sample_weight=w),
        "recall": sk.recall_score(t, p >= 0.5, sample_weight=w),
        "f1": sk.f1_score(t, p >= 0.5, sample_weight=w),
        "roc_auc": sk.roc_auc_score(t, p, sample_weight=w),
        "r2": sk.r2_score(t, p, sample_weight=w),
        "rmse": sk.root_mean_squared_error(t, p, sample_weight=w),
        "mae": sk.mean_absolute_error(t, p, sample_weight=w),
    }
    for name, value in expected.items():
        assert math.isclose(merged["metrics"][name], value, rel_tol=1e-12), name
    bce = sk.log_loss(t, p, sample_weight=w)
    mse = float(np.average((p - t) ** 2, weights=w))
    assert math.isclose(merged["terms"]["binary_cross_entropy"]["cost"], bce, rel_tol=1e-12)
    assert math.isclose(merged["cost"], bce + 0.25 * mse, rel_tol=1e-12)
    # top_k: the 7 largest bce + 0.25 mse per sample, global indices
    per_sample = -(t * np.log(p) + (1 - t) * np.log(1 - p)) + 0.25 * (p - t) ** 2
    order = sorted(range(N), key=lambda i: (-per_sample[i], i))[:7]
    assert [item["index"] for item in merged["top_k"]] == order
    np.testing.assert_allclose([i["value"] for i in merged["top_k"]], per_sample[order], 1e-12)


@given(
    cuts=st.lists(st.integers(1, N - 1), max_size=6),
    order=st.randoms(use_true_random=False),
    split=st.integers(1, 6),
)
def test_any_cuts_order_and_tree_give_the_same_answer(
    client: TestClient, cuts: list[int], order: Any, split: int
) -> None:
    body = {k: v for k, v in BINARY_BODY.items() if k != "groups"}
    states = [evaluate(client, shard)["state"] for shard in shard_bodies(BINARY, cuts, **body)]
    order.shuffle(states)
    flat = merge(client, states)
    cut = min(split, len(states))
    left, right = states[:cut], states[cut:]
    tree = merge(client, [merge(client, part)["state"] for part in (left, right) if part])
    whole = evaluate(client, {**{k: v.tolist() for k, v in BINARY.items()}, **body})
    assert_close(comparable(flat), comparable(whole))
    assert_close(comparable(tree), comparable(whole))


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_multiclass_merge_equals_scikit_learn(client: TestClient, average: str) -> None:
    rng = np.random.default_rng(7)
    n, classes = 150, 5
    logits = rng.normal(size=(n, classes))
    labels = rng.integers(0, classes - 1, n)  # class 4 never a target: present by prediction
    weight = rng.uniform(0.5, 2.0, n)
    arrays = {"predictions": logits, "targets": labels.astype(float), "sample_weight": weight}
    metrics = [
        {"name": name, "params": {"average": average}} for name in ("precision", "recall", "f1")
    ] + ["accuracy"]
    body = {
        "terms": [{"loss": "cross_entropy", "params": {"from_logits": True}}],
        "metrics": metrics,
    }
    states = [evaluate(client, s)["state"] for s in shard_bodies(arrays, [40, 41, 99], **body)]
    merged = merge(client, states)
    guess = logits.argmax(axis=1)
    for name, function in (
        ("precision", sk.precision_score),
        ("recall", sk.recall_score),
        ("f1", sk.f1_score),
    ):
        expected = function(labels, guess, average=average, sample_weight=weight, zero_division=0)
        assert math.isclose(merged["metrics"][name], expected, rel_tol=1e-12), name
    accuracy = sk.accuracy_score(labels, guess, sample_weight=weight)
    assert math.isclose(merged["metrics"]["accuracy"], accuracy, rel_tol=1e-12)


def test_multilabel_merge_equals_scikit_learn_on_the_entries(client: TestClient) -> None:
    rng = np.random.default_rng(8)
    p = rng.uniform(size=(80, 3)).round(2)
    t = (rng.uniform(size=(80, 3)) < p).astype(float)
    body = {"terms": [{"loss": "bce"}], "metrics": ["f1", "roc_auc", "accuracy"]}
    states = [
        evaluate(client, s)["state"]
        for s in shard_bodies({"predictions": p, "targets": t}, [5, 50], **body)
    ]
    merged = merge(client, states)
    flat_t, flat_p = t.reshape(-1), p.reshape(-1)
    assert math.isclose(merged["metrics"]["f1"], sk.f1_score(flat_t, flat_p >= 0.5), rel_tol=1e-12)
    assert math.isclose(
        merged["metrics"]["roc_auc"], sk.roc_auc_score(flat_t, flat_p), rel_tol=1e-12
    )


def test_regression_with_a_large_mean_keeps_r2_to_1e_9(client: TestClient) -> None:
    rng = np.random.default_rng(9)
    y = 1e3 + 5.0 * rng.normal(size=400)
    yhat = y + rng.normal(size=400)
    body = {"terms": [{"loss": "mse"}], "metrics": ["r2", "rmse", "mae"]}
    cuts = list(range(7, 400, 37))
    states = [
        evaluate(client, s)["state"]
        for s in shard_bodies({"predictions": yhat, "targets": y}, cuts, **body)
    ]
    merged = merge(client, states)
    assert math.isclose(merged["metrics"]["r2"], sk.r2_score(y, yhat), rel_tol=1e-9)
    assert math.isclose(
        merged["metrics"]["rmse"], sk.root_mean_squared_error(y, yhat), rel_tol=1e-12
    )


# ---- slices --------------------------------------------------------------------------------


def test_slices_equal_separate_requests_and_survive_merges(client: TestClient) -> None:
    rng = np.random.default_rng(10)
    labels = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, N)]
    labels[:3] = "dog"
    arrays = {**BINARY, "groups": labels}
    body = {k: v for k, v in BINARY_BODY.items() if k not in ("groups", "top_k")}
    whole = evaluate(client, {**{k: v.tolist() for k, v in arrays.items()}, **body, "state": True})
    assert set(whole["groups"]) == {"cat", "dog", "eel"}
    for label, part in whole["groups"].items():
        keep = labels == label
        alone = evaluate(client, {**{k: v[keep].tolist() for k, v in BINARY.items()}, **body})
        assert part["count"] == alone["count"] == int(keep.sum())
        assert math.isclose(part["weight_sum"], BINARY["sample_weight"][keep].sum(), rel_tol=1e-12)
        assert_close(
            {"cost": part["cost"], "metrics": part["metrics"]},
            {"cost": alone["cost"], "metrics": alone["metrics"]},
        )
        for term, values in part["terms"].items():
            for key in ("cost", "sum", "weight_sum", "count"):
                assert math.isclose(values[key], alone["terms"][term][key], rel_tol=1e-12)
    states = [evaluate(client, s)["state"] for s in shard_bodies(arrays, [30, 200], **body)]
    assert_close(merge(client, states)["groups"], whole["groups"])


def test_a_metric_undefined_on_a_slice_is_null_with_its_reason(client: TestClient) -> None:
    body = {
        "predictions": [0.2, 0.8, 0.6, 0.4],
        "targets": [0.0, 1.0, 1.0, 1.0],
        "groups": [1, 1, 2, 2],
        "terms": [{"loss": "mse"}],
        "metrics": ["roc_auc", "accuracy"],
    }
    answer = evaluate(client, body)
    whole = sk.roc_auc_score(body["targets"], body["predictions"])
    assert answer["metrics"]["roc_auc"] == whole == 1.0
    two = answer["groups"]["2"]
    assert two["metrics"]["roc_auc"] is None
    assert "both classes" in two["undefined"]["roc_auc"]
    assert two["metrics"]["accuracy"] == 0.5
    assert answer["groups"]["1"]["metrics"]["roc_auc"] == 1.0


def test_groups_are_checked(client: TestClient) -> None:
    base = {"predictions": [0.2, 0.8], "targets": [0.0, 1.0], "terms": [{"loss": "mse"}]}
    response = client.post("/v1/evaluate", json={**base, "groups": [1]})
    assert response.status_code == 422
    assert "groups has 1 labels but predictions has 2 samples" in response.json()["detail"]
    response = client.post("/v1/evaluate", json={**base, "groups": [1, "a"]})
    assert response.status_code == 422


# ---- refusals ------------------------------------------------------------------------------


def test_states_of_different_definitions_empty_lists_and_junk_are_422(client: TestClient) -> None:
    body = {"predictions": [0.2, 0.8], "targets": [0.0, 1.0], "state": True}
    one = evaluate(client, {**body, "terms": [{"loss": "mse"}]})["state"]
    other = evaluate(client, {**body, "terms": [{"loss": "mse", "weight": 2.0}]})["state"]
    response = client.post("/v1/evaluate/merge", json={"states": [one, other]})
    assert response.status_code == 422
    assert (
        "definition.terms[0].weight is 1.0 in one state and 2.0 in another"
        in response.json()["detail"]
    )
    assert client.post("/v1/evaluate/merge", json={"states": []}).status_code == 422
    broken = {**one, "terms": [{"sum": "x", "weight_sum": 1.0, "count": 1}]}
    response = client.post("/v1/evaluate/merge", json={"states": [one, broken]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][:3] == ["body", "states", 1]
    negative = {**one, "weight_sum": -1.0}
    assert client.post("/v1/evaluate/merge", json={"states": [negative]}).status_code == 422


def test_states_count_toward_the_element_limit_and_groups_toward_theirs() -> None:
    from service.app import create_app
    from service.ops.settings import Settings

    app = create_app(Settings(grpc_port=0, max_elements=60, max_groups=2), warm=lambda: 0)
    with TestClient(app) as limited:
        body = {"predictions": [0.1, 0.9, 0.7], "targets": [0.0, 1.0, 0.0], "state": True}
        body["terms"] = [{"loss": "mse"}]
        body["metrics"] = ["roc_auc"]
        state = evaluate(limited, body)["state"]
        response = limited.post("/v1/evaluate/merge", json={"states": [state] * 3})
        assert response.status_code == 413
        assert "LOSS_SERVICE_MAX_ELEMENTS" in response.json()["detail"]
        response = limited.post("/v1/evaluate", json={**body, "groups": [1, 2, 3]})
        assert response.status_code == 422
        assert (
            "3 distinct labels; the limit is 2 (LOSS_SERVICE_MAX_GROUPS)"
            in response.json()["detail"]
        )


def leaves(document: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(document, dict):
        return [leaf for key, value in document.items() for leaf in leaves(value, (*path, key))]
    if isinstance(document, list):
        found = [path]
        for index, value in enumerate(document):
            found += leaves(value, (*path, index))
        return found
    return [path]


def replaced(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[head] = replaced(document[head], tuple(rest), value)
    return copy


JUNK = [None, -1, -1.5, 0, 10**30, 1e308, "x", "", [], {}, [1, 2], {"a": 1}, True, [[0.5]]]
GROUPED = {**{k: v[:40].tolist() for k, v in BINARY.items()}, "groups": [i % 3 for i in range(40)]}


@given(data=st.data())
def test_a_damaged_state_is_refused_or_merged_never_a_500(client: TestClient, data: Any) -> None:
    body = {**GROUPED, **{k: v for k, v in BINARY_BODY.items() if k != "groups"}, "state": True}
    state = evaluate(client, body)["state"]
    path = data.draw(st.sampled_from(leaves(state)))
    damaged = replaced(state, path, data.draw(st.sampled_from(JUNK)))
    response = client.post("/v1/evaluate/merge", json={"states": [state, damaged]})
    assert response.status_code in (200, 413, 422), (path, response.text)
    if response.status_code == 200:
        text = response.text
        assert "NaN" not in text and "Infinity" not in text


def test_sums_that_overflow_in_a_merge_are_422_never_null(client: TestClient) -> None:
    body = {"predictions": [0.2, 0.8], "targets": [0.0, 1.0], "state": True}
    state = evaluate(client, {**body, "terms": [{"loss": "mse"}]})["state"]
    huge = replaced(state, ("terms", 0, "sum"), 1.5e308)
    response = client.post("/v1/evaluate/merge", json={"states": [huge, huge]})
    assert response.status_code == 422, response.text
    assert "overflows float64" in response.json()["detail"]
