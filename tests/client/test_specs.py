"""``--term`` / ``--metric`` parsing and the command line's options."""

from __future__ import annotations

import pytest
from loss_client import cli
from loss_client.specs import (
    SpecError,
    metrics_from,
    parse_metric,
    parse_term,
    terms_from,
)


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("mse", {"loss": "mse"}),
        ("  mse  ", {"loss": "mse"}),
        (
            'binary_cross_entropy:{"from_logits": true}',
            {"loss": "binary_cross_entropy", "params": {"from_logits": True}},
        ),
        (
            'dice:{"mode": "binary"}:0.5',
            {"loss": "dice", "params": {"mode": "binary"}, "weight": 0.5},
        ),
        (
            'dice: {"mode": "binary"} : 2',
            {"loss": "dice", "params": {"mode": "binary"}, "weight": 2.0},
        ),
        ("mse::2", {"loss": "mse", "weight": 2.0}),
        ("mse:{}:1e-3", {"loss": "mse", "weight": 0.001}),
        # colons inside the JSON: a string holding them, nested objects
        (
            'custom:{"expression": "where(y > 0.5, 2, 1) * (p - y)**2", "note": "a:b::c"}:3',
            {
                "loss": "custom",
                "params": {"expression": "where(y > 0.5, 2, 1) * (p - y)**2", "note": "a:b::c"},
                "weight": 3.0,
            },
        ),
        (
            'custom:{"expression": "k * abs(p - y)", "constants": {"k": 0.3}}',
            {"loss": "custom", "params": {"expression": "k * abs(p - y)", "constants": {"k": 0.3}}},
        ),
        (
            '{"loss": "mse", "label": "a:b", "weight": 0.25}',
            {"loss": "mse", "label": "a:b", "weight": 0.25},
        ),
    ],
)
def test_terms(text: str, term: dict) -> None:
    assert parse_term(text) == term


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a name comes first"),
        (':{"a": 1}', "a name comes first"),
        ("mse:", "nothing after the colon"),
        ('mse:{"delta": }', "not valid JSON"),
        ("mse:[1, 2]", "must be a JSON object"),
        ('mse:{"a": 1}x', "unexpected 'x'"),
        ('mse:{"a": 1}:heavy', "the weight 'heavy' is not a number"),
        ('mse:{"a": 1}:nan', "finite"),
        ('mse:{"a": 1}:', "is not a number"),
        ('{"loss": "mse", "wieght": 2}', "unknown key(s) ['wieght']"),
        ('{"params": {}}', "'loss' must name a loss"),
    ],
)
def test_bad_terms(text: str, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_term(text)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "metric"),
    [
        ("roc_auc", "roc_auc"),
        ('f1:{"from_logits": true}', {"name": "f1", "params": {"from_logits": True}}),
        (
            'f1:{"average": "weighted", "threshold": 0.25}',
            {"name": "f1", "params": {"average": "weighted", "threshold": 0.25}},
        ),
        ("accuracy:{}", "accuracy"),
        (
            '{"name": "recall", "params": {"from_logits": true}}',
            {"name": "recall", "params": {"from_logits": True}},
        ),
    ],
)
def test_metrics(text: str, metric: object) -> None:
    assert parse_metric(text) == metric


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('f1:{"from_logits": true}:2', "unexpected ':2' after the params"),
        ("f1:{", "not valid JSON"),
        ('{"name": "f1", "weight": 2}', "unknown key(s) ['weight']"),
    ],
)
def test_bad_metrics(text: str, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_metric(text)
    assert message in str(raised.value)


def test_the_python_api_takes_names_and_mappings() -> None:
    assert terms_from("mse") == [{"loss": "mse"}]
    assert terms_from(["mse", {"loss": "mae", "weight": 0.5, "params": None}]) == [
        {"loss": "mse"},
        {"loss": "mae", "weight": 0.5},
    ]
    assert metrics_from(None) == []
    assert metrics_from("r2") == ["r2"]
    assert metrics_from([{"name": "f1", "params": {"threshold": 0.3}}]) == [
        {"name": "f1", "params": {"threshold": 0.3}}
    ]
    with pytest.raises(SpecError, match="at least one term"):
        terms_from([])
    with pytest.raises(SpecError, match="a loss name or a mapping"):
        terms_from([3])


def test_the_command_line() -> None:
    arguments = cli.parser().parse_args(
        [
            "--url", "http://a:8000", "--url", "http://b:8000",
            "--predictions", "p.npz:logits", "--targets", "t.csv:label",
            "--term", 'binary_cross_entropy:{"from_logits": true}',
            "--term", 'dice:{"mode": "binary"}:0.5',
            "--metric", "roc_auc", "--metric", 'f1:{"from_logits": true}',
            "--top-k", "5", "--shard-size", "1000", "--concurrency", "2",
        ]
    )  # fmt: skip
    assert arguments.url == ["http://a:8000", "http://b:8000"]
    assert arguments.term == [
        'binary_cross_entropy:{"from_logits": true}',
        'dice:{"mode": "binary"}:0.5',
    ]
    assert arguments.metric == ["roc_auc", 'f1:{"from_logits": true}']
    assert (arguments.top_k, arguments.shard_size, arguments.concurrency) == (5, 1000, 2)
    assert arguments.sample_weight is None and arguments.groups is None


@pytest.mark.parametrize(
    "extra",
    [["--shard-size", "0"], ["--concurrency", "-1"], ["--top-k", "two"], ["--bogus"]],
)
def test_bad_options_are_usage_errors(extra: list[str], capsys: pytest.CaptureFixture) -> None:
    base = ["--url", "http://a", "--predictions", "p.npy", "--targets", "t.npy", "--term", "mse"]
    with pytest.raises(SystemExit) as raised:
        cli.parser().parse_args(base + extra)
    assert raised.value.code == 2
    assert "loss-eval: error:" in capsys.readouterr().err


def test_a_bad_term_is_a_usage_error_before_anything_is_read(
    capsys: pytest.CaptureFixture,
) -> None:
    status = cli.main(
        ["--url", "http://127.0.0.1:9", "--predictions", "missing.npy", "--targets", "missing.npy",
         "--term", 'mse:{"delta": 1']
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("loss-eval: error: --term 'mse:{\"delta\": 1': the params are not valid")
    assert err.count("\n") == 1
