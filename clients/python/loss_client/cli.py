"""``loss-eval``: evaluate a data set in files against loss-service replicas.

Exit status: 0 success; 1 an error of the data, the files or the service (its problem
``detail``), said in one line on stderr; 2 a usage error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from loss_client import report, specs
from loss_client.arrays import InputError
from loss_client.client import DEFAULT_CONCURRENCY, DEFAULT_SHARD_SIZE, Client
from loss_client.transport import ClientError

PROGRAM = "loss-eval"
API_KEY_VARIABLE = "LOSS_EVAL_API_KEY"

EPILOG = f"""\
Arrays: FILE.npy (memory-mapped), FILE.npz:KEY, FILE.csv:COLUMN (a header row names the
columns), FILE.parquet:COLUMN (needs pyarrow).
A term is loss[:params-json[:weight]], e.g. 'binary_cross_entropy:{{"from_logits": true}}' or
'dice:{{"mode": "binary"}}:0.5' or mse::2; a metric is name[:params-json], e.g. roc_auc or
'f1:{{"from_logits": true}}'. Either may also be a whole JSON object.
The API key may come from ${API_KEY_VARIABLE} instead of --api-key (which other users can see in
the process list).
Exit status: 0 success, 1 an error (one line on stderr), 2 a usage error."""


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Score predictions against targets with loss-service: shards sent "
        "concurrently over the replicas, their states merged exactly.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = result.add_argument
    add("--url", action="append", required=True, help="a replica's base URL; repeatable")
    add("--predictions", required=True, metavar="ARRAY", help="predictions (or logits)")
    add("--targets", required=True, metavar="ARRAY", help="targets")
    add("--sample-weight", metavar="ARRAY", help="one weight per sample")
    add("--groups", metavar="ARRAY", help="one slice label per sample (integers or strings)")
    add(
        "--term",
        action="append",
        required=True,
        metavar="SPEC",
        help="loss[:params-json[:weight]]; repeatable",
    )
    add(
        "--metric",
        action="append",
        default=[],
        metavar="SPEC",
        help="name[:params-json]; repeatable",
    )
    add(
        "--top-k",
        type=positive,
        metavar="K",
        help="also report the K samples with the largest total per-sample loss",
    )
    add(
        "--shard-size",
        type=positive,
        default=DEFAULT_SHARD_SIZE,
        metavar="N",
        help=f"samples per request (default {DEFAULT_SHARD_SIZE})",
    )
    add(
        "--concurrency",
        type=positive,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight (default {DEFAULT_CONCURRENCY})",
    )
    add("--api-key", metavar="KEY", help="sent as Authorization: Bearer KEY")
    add("--output", metavar="FILE", help="write the final merge response here as JSON")
    add(
        "--max-attempts",
        type=positive,
        default=10,
        metavar="N",
        help="attempts per request over connection errors and 502/503 (default 10)",
    )
    add(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for one answer (default 300); a timeout is not retried",
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        terms = [specs.parse_term(text) for text in arguments.term]
        metrics = [specs.parse_metric(text) for text in arguments.metric]
    except specs.SpecError as error:
        return fail(str(error), status=2)
    output = Path(arguments.output) if arguments.output else None
    if output is not None and not output.parent.is_dir():
        return fail(f"--output {output}: no such directory {output.parent}", status=2)
    api_key = arguments.api_key or os.environ.get(API_KEY_VARIABLE) or None
    try:
        client = Client(
            arguments.url,
            api_key,
            max_attempts=arguments.max_attempts,
            read_timeout=arguments.timeout,
        )
        result = client.evaluate(
            arguments.predictions,
            arguments.targets,
            terms=terms,
            metrics=metrics,
            sample_weight=arguments.sample_weight,
            groups=arguments.groups,
            top_k=arguments.top_k,
            shard_size=arguments.shard_size,
            concurrency=arguments.concurrency,
        )
    except (ClientError, InputError, ValueError) as error:
        return fail(str(error))
    except KeyboardInterrupt:
        return fail("interrupted", status=130)
    if output is not None:
        try:
            output.write_text(json.dumps(result.raw, indent=2) + "\n", encoding="utf-8")
        except OSError as error:
            return fail(f"--output {output}: {error.strerror or error}")
    print(report.render(result))
    return 0


def fail(message: str, status: int = 1) -> int:
    print(f"{PROGRAM}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
