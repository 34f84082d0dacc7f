#!/usr/bin/env python3
"""Score a scikit-learn model with loss-eval: a logistic regression on the breast cancer data set
that ships with scikit-learn, its held-out logits and labels saved as .npy files, and the
command that evaluates them through loss-service.

    python examples/client_breast_cancer.py [--out DIR] [--url http://127.0.0.1:8000]

It prints scikit-learn's own log loss, ROC AUC and F1 on the same data, then the loss-eval
command (pip install ./clients/python); the numbers loss-eval prints are the same. The slices
are the tumours' size (mean radius above or below the median).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import numpy as np
from scipy.special import expit
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def prepare(folder: Path) -> dict[str, Path]:
    """Train on half the data; save the other half's logits, labels and size slices."""
    features, labels = load_breast_cancer(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.5, random_state=0, stratify=labels
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train_x, train_y)
    logits = model.decision_function(test_x)
    radius = test_x[:, 0]  # "mean radius"
    size = np.where(radius > np.median(radius), "large", "small")
    folder.mkdir(parents=True, exist_ok=True)
    files = {"logits": logits, "labels": test_y.astype(np.int64), "size": size}
    paths = {name: folder / f"{name}.npy" for name in files}
    for name, array in files.items():
        np.save(paths[name], array)
    return paths


def command(paths: dict[str, Path], url: str) -> list[str]:
    return [
        "loss-eval", "--url", url,
        "--predictions", str(paths["logits"]), "--targets", str(paths["labels"]),
        "--groups", str(paths["size"]),
        "--term", 'binary_cross_entropy:{"from_logits": true}',
        "--metric", "roc_auc", "--metric", 'f1:{"from_logits": true}',
        "--top-k", "3", "--shard-size", "50",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("breast_cancer"), help="where to save")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a loss-service replica")
    args = parser.parse_args(argv)
    paths = prepare(args.out)
    logits, labels = np.load(paths["logits"]), np.load(paths["labels"])
    print(f"{len(labels)} held-out samples; scikit-learn on them:")
    print(f"  log_loss {log_loss(labels, expit(logits)):.10g}")
    print(f"  roc_auc  {roc_auc_score(labels, logits):.10g}")
    print(f"  f1       {f1_score(labels, (logits >= 0).astype(int)):.10g}")
    print("loss-eval gives the same numbers:")
    print(shlex.join(command(paths, args.url)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
