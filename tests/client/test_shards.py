"""Shards: every sample in exactly one shard, in order, with its global offset; the checks made
before anything is sent; the merge tree's grouping."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from loss_client.arrays import InputError
from loss_client.merge import MERGE_PATH, batches, merge_tree
from loss_client.shards import Field, as_field, check, shard_body, shard_bounds
from loss_client.transport import ServiceError

DEFINITION = {"terms": [{"loss": "mse"}]}


@given(samples=st.integers(1, 5000), shard_size=st.integers(1, 6000))
def test_shards_cover_every_sample_once_in_order(samples: int, shard_size: int) -> None:
    bounds = shard_bounds(samples, shard_size)
    covered = np.concatenate([np.arange(start, stop) for start, stop in bounds])
    np.testing.assert_array_equal(covered, np.arange(samples))
    assert all(0 < stop - start <= shard_size for start, stop in bounds)
    assert len(bounds) == -(-samples // shard_size)


@given(samples=st.integers(1, 300), shard_size=st.integers(1, 120))
def test_bodies_carry_each_sample_once_with_its_offset(samples: int, shard_size: int) -> None:
    predictions = np.arange(samples * 2, dtype=np.float64).reshape(samples, 2) / 7
    targets = np.arange(samples) % 3
    weights = np.linspace(0.5, 2.0, samples)
    groups = np.array([f"g{i % 4}" for i in range(samples)])
    fields = [
        as_field("predictions", predictions),
        as_field("targets", targets),
        as_field("sample_weight", weights),
        as_field("groups", groups),
    ]
    assert check(fields) == samples
    seen_rows, seen_targets, seen_weights, seen_groups = [], [], [], []
    for start, stop in shard_bounds(samples, shard_size):
        body = json.loads(shard_body(fields, start, stop, {**DEFINITION, "top_k": 3}))
        assert body["offset"] == start
        assert body["state"] is True
        assert body["include"] == ["cost"]
        assert body["terms"] == DEFINITION["terms"] and body["top_k"] == 3
        seen_rows += body["predictions"]
        seen_targets += body["targets"]
        seen_weights += body["sample_weight"]
        seen_groups += body["groups"]
    np.testing.assert_array_equal(seen_rows, predictions)  # exact: JSON floats round-trip
    np.testing.assert_array_equal(seen_targets, targets)
    np.testing.assert_array_equal(seen_weights, weights)
    assert seen_groups == groups.tolist()


def test_memory_mapped_shards_read_only_their_slice(tmp_path) -> None:
    path = tmp_path / "p.npy"
    np.save(path, np.arange(1000, dtype=np.float64))
    mapped = np.load(path, mmap_mode="r")
    fields = [Field("predictions", mapped, "p.npy"), Field("targets", np.zeros(1000))]
    body = json.loads(shard_body(fields, 400, 410, DEFINITION))
    assert body["predictions"] == list(range(400, 410))
    assert isinstance(fields[0].array, np.memmap)  # never copied whole


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ((1000, 999, None, None), "predictions has 1000 samples but targets has 999"),
        ((5, 5, 4, None), "predictions has 5 samples but sample_weight has 4"),
        ((5, 5, 5, 6), "predictions has 5 samples but groups has 6"),
        ((0, 0, None, None), "predictions has no samples"),
    ],
)
def test_lengths_are_checked(lengths: tuple, message: str) -> None:
    predictions, targets, weights, groups = lengths
    fields = [Field("predictions", np.zeros(predictions)), Field("targets", np.zeros(targets))]
    if weights is not None:
        fields.append(Field("sample_weight", np.ones(weights)))
    if groups is not None:
        fields.append(Field("groups", np.zeros(groups, dtype=int)))
    with pytest.raises(InputError) as raised:
        check(fields)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (Field("predictions", np.float64(1.0)), "predictions is a scalar"),
        (
            Field("targets", np.array(["a", "b"]), "t.csv:y"),
            "targets (t.csv:y) holds <U1, not numbers",
        ),
        (Field("groups", np.zeros((2, 2))), "groups has shape (2, 2); groups has one label per"),
    ],
)
def test_kinds_and_shapes_are_checked(field: Field, message: str) -> None:
    fields = [Field("predictions", np.zeros(2)), Field("targets", np.zeros(2))]
    fields = [field if item.name == field.name else item for item in fields] + (
        [field] if field.name == "groups" else []
    )
    with pytest.raises(InputError) as raised:
        check(fields)
    assert message in str(raised.value)


def test_non_finite_values_are_refused_naming_the_file_and_index() -> None:
    predictions = np.zeros((100, 3))
    predictions[57, 2] = np.nan
    fields = [Field("predictions", predictions, "preds.npy"), Field("targets", np.zeros(100))]
    json.loads(shard_body(fields, 0, 50, DEFINITION))  # the first shard is fine
    with pytest.raises(InputError) as raised:
        shard_body(fields, 50, 100, DEFINITION)
    assert str(raised.value).startswith(
        "predictions (preds.npy) has a non-finite value (nan) at index (57, 2)"
    )
    weights = np.ones(100)
    weights[99] = np.inf
    fields = [Field("predictions", np.zeros(100)), Field("sample_weight", weights, "w.csv:w")]
    with pytest.raises(InputError, match=r"sample_weight \(w.csv:w\) .*\(inf\) at index 99;"):
        shard_body(fields, 90, 100, DEFINITION)


def test_group_labels_as_sent() -> None:
    fields = [Field("groups", np.array([1.0, 2.0, 2.0]))]
    assert json.loads(shard_body(fields, 0, 3, DEFINITION))["groups"] == [1, 2, 2]
    fields = [Field("groups", np.array([1.5]))]
    with pytest.raises(InputError, match="fractions"):
        shard_body(fields, 0, 1, DEFINITION)
    fields = [Field("groups", np.array([b"a", b"b"])), Field("targets", np.array([True, False]))]
    body = json.loads(shard_body(fields, 0, 2, DEFINITION))
    assert body["groups"] == ["a", "b"] and body["targets"] == [1, 0]


@given(
    sizes=st.lists(st.integers(1, 50), min_size=1, max_size=200),
    fan_in=st.integers(2, 40),
    max_bytes=st.integers(1, 400),
)
def test_merge_batches_keep_every_state_once(sizes: list[int], fan_in: int, max_bytes: int) -> None:
    states = [b"x" * size for size in sizes]
    groups = batches(states, fan_in, max_bytes)
    assert [state for group in groups for state in group] == states
    for group in groups:
        assert 1 <= len(group) <= fan_in
        if len(group) > 2:
            assert sum(map(len, group)) <= max_bytes
    if len(states) > 1:
        assert all(len(group) >= 2 for group in groups[:-1])


@pytest.mark.parametrize(
    ("shards", "fan_in", "requests"),
    [(1, 32, 1), (32, 32, 1), (33, 32, 2), (1000, 32, 33), (100, 2, 99), (7, 3, 3)],
)
def test_the_merge_tree_merges_every_state_exactly_once(
    shards: int, fan_in: int, requests: int
) -> None:
    """A stand-in for the service that merges by concatenation: the tree's last answer must
    hold every shard once, however deep the tree."""
    posted: list[int] = []

    def post(path: str, body: bytes, first: int) -> dict:
        assert path == MERGE_PATH
        posted.append(first)
        states = json.loads(body)["states"]
        assert 1 <= len(states) <= fan_in
        return {"state": {"shards": [shard for state in states for shard in state["shards"]]}}

    states = [json.dumps({"shards": [index]}).encode() for index in range(shards)]
    with ThreadPoolExecutor(2) as pool:
        answer = merge_tree(post, states, pool, first=shards, fan_in=fan_in)
    assert answer["state"]["shards"] == list(range(shards))
    assert len(posted) == requests
    assert len(set(posted)) == requests and min(posted) == shards  # round-robin goes on


@pytest.mark.parametrize(("shards", "limit"), [(40, 3), (100, 2), (33, 5), (9, 8)])
def test_a_merge_refused_as_too_large_is_split(shards: int, limit: int) -> None:
    """The service's 413 on a merge ("merge fewer at once"): halves are merged instead, and
    later groups are smaller; every shard still ends up in the result exactly once."""
    accepted: list[int] = []

    def post(path: str, body: bytes, first: int) -> dict:
        states = json.loads(body)["states"]
        if len(states) > limit:
            raise ServiceError(413, "too many numbers; merge fewer at once", path)
        accepted.append(len(states))
        return {"state": {"shards": [shard for state in states for shard in state["shards"]]}}

    states = [json.dumps({"shards": [index]}).encode() for index in range(shards)]
    with ThreadPoolExecutor(2) as pool:
        answer = merge_tree(post, states, pool, fan_in=32)
    assert answer["state"]["shards"] == list(range(shards))
    assert max(accepted) <= limit


def test_two_states_too_large_together_are_the_service_s_last_word() -> None:
    def post(path: str, body: bytes, first: int) -> dict:
        raise ServiceError(413, "states: too many numbers", path)

    states = [b'{"a":1}'] * 5
    with ThreadPoolExecutor(1) as pool, pytest.raises(ServiceError) as raised:
        merge_tree(post, states, pool)
    assert raised.value.detail.startswith("states: too many numbers (the merged state is too")
    assert "round the scores roc_auc ranks" in str(raised.value)
