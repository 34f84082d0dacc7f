"""The result as plain-text tables: the total, each term, each metric, each slice, top_k."""

from __future__ import annotations

from collections.abc import Sequence

from loss_client.result import Result

UNDEFINED = "undefined"


def render(result: Result) -> str:
    lines = [
        f"cost {number(result.cost)}  ({result.reduction} over {result.count} samples, "
        f"{result.shards} shard{'s' if result.shards != 1 else ''})",
        "",
    ]
    lines += table(
        ["term", "loss", "weight", "cost", "sum", "weight_sum", "count"],
        [
            [
                label,
                term.loss or "",
                number(term.weight),
                number(term.cost),
                number(term.sum),
                number(term.weight_sum),
                number(term.count),
            ]
            for label, term in result.terms.items()
        ],
        left=2,
    )
    if result.metrics:
        lines.append("")
        lines += table(
            ["metric", "value"],
            [[name, number(value)] for name, value in result.metrics.items()],
        )
        lines += [f"  {name}: {reason}" for name, reason in result.undefined.items()]
    if result.groups:
        metric_names = list(result.metrics) or sorted(
            {name for group in result.groups.values() for name in group.metrics}
        )
        lines.append("")
        lines += table(
            ["slice", "count", "weight_sum", "cost", *metric_names],
            [
                [label, number(group.count), number(group.weight_sum), number(group.cost)]
                + [number(group.metrics.get(name)) for name in metric_names]
                for label, group in result.groups.items()
            ],
        )
        lines += [
            f"  {label} {name}: {reason}"
            for label, group in result.groups.items()
            for name, reason in group.undefined.items()
        ]
    if result.top_k:
        lines += ["", f"top {len(result.top_k)} (largest total per-sample loss)"]
        lines += table(
            ["index", "value"],
            [[number(worst.index), number(worst.value)] for worst in result.top_k],
        )
    return "\n".join(lines)


def number(value: float | int | None) -> str:
    if value is None:
        return UNDEFINED
    if isinstance(value, int):
        return str(value)
    return f"{value:.10g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Columns padded to their widest cell; the first ``left`` columns (names) to the left,
    the rest (numbers) to the right."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if column < left else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(row) for row in rows)]
