"""Loss charts for PR comments: a fine-tuning results CSV as a mermaid ``xychart-beta`` block."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from ftops.cost import format_usd
from ftops.errors import FtopsError

MAX_POINTS = 50
# xychart-beta draws no legend, so lines get fixed colours that the caption names.
_TRAIN_COLOR, _VALID_COLOR = "#1f77b4", "#ff7f0e"


@dataclass(frozen=True)
class _Row:
    step: int
    train_loss: float
    valid_loss: float | None


def loss_chart_markdown(
    model_name: str, csv_text: str, *, trained_tokens: int | None, cost_usd: float | None
) -> str:
    """A mermaid chart of train (and, when reported, valid) loss plus a table of final figures.

    The results file has the columns ``step,train_loss,train_accuracy,valid_loss,
    valid_mean_token_accuracy``; valid columns are empty on steps without validation. Runs longer
    than 50 steps are shown as 50 points, each the mean over an equal run of consecutive steps
    (labelled with its last step), which also smooths the noisy per-step loss. A bucket without a
    validation value repeats the previous one, since a chart line cannot have gaps.
    """
    rows = _parse(model_name, csv_text)
    valid = [r.valid_loss for r in rows if r.valid_loss is not None]
    table = (
        "| | |\n|---|---|\n"
        f"| final train loss | {_number(rows[-1].train_loss) if rows else '—'} |\n"
        f"| final valid loss | {_number(valid[-1]) if valid else '—'} |\n"
        f"| trained tokens | {f'{trained_tokens:,}' if trained_tokens is not None else '—'} |\n"
        f"| cost | {format_usd(cost_usd) if cost_usd is not None else '—'} |\n"
    )
    if not rows:
        return f"No training metrics were reported for `{model_name}`.\n\n{table}"
    buckets = _buckets(rows)
    steps = [bucket[-1].step for bucket in buckets]
    train = [_mean([r.train_loss for r in bucket]) for bucket in buckets]
    lines = [train]
    if valid:
        lines.append(_carried([_mean_or_none(bucket) for bucket in buckets]))
    values = [v for line in lines for v in line]
    low, high = _axis(min(values), max(values))
    title = " ".join(model_name.replace('"', "'").split())
    chart = [
        "```mermaid",
        '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "'
        + ", ".join((_TRAIN_COLOR, _VALID_COLOR)[: len(lines)])
        + '"}}}}%%',
        "xychart-beta",
        f'    title "{title}: loss"',
        f'    x-axis "step" [{", ".join(str(s) for s in steps)}]',
        f'    y-axis "loss" {_number(low)} --> {_number(high)}',
        *(f"    line [{', '.join(_number(v) for v in line)}]" for line in lines),
        "```",
    ]
    caption = f"Blue: train loss{', orange: valid loss' if valid else ''}"
    if len(rows) > len(buckets):
        caption += f" ({len(rows)} steps shown as {len(buckets)} averaged points)"
    return "\n".join(chart) + f"\n\n{caption}.\n\n{table}"


def _parse(model_name: str, csv_text: str) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(csv_text))
    where = f"training results of {model_name}"
    missing = {"step", "train_loss"} - set(reader.fieldnames or ())
    if missing:
        raise FtopsError(f"{where}: missing column(s) {', '.join(sorted(missing))}")
    rows = []
    for record in reader:
        try:
            step = int(float(record["step"]))
            train = float(record["train_loss"])
            valid_text = (record.get("valid_loss") or "").strip()
            valid = float(valid_text) if valid_text else None
        except (TypeError, ValueError):
            raise FtopsError(f"{where}, line {reader.line_num}: not a number") from None
        if not all(math.isfinite(v) for v in (train, valid or 0.0)):
            raise FtopsError(f"{where}, line {reader.line_num}: loss is not finite")
        rows.append(_Row(step, train, valid))
    return rows


def _buckets(rows: list[_Row]) -> list[list[_Row]]:
    count = min(len(rows), MAX_POINTS)
    edges = [round(i * len(rows) / count) for i in range(count + 1)]
    return [rows[edges[i] : edges[i + 1]] for i in range(count)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _mean_or_none(bucket: list[_Row]) -> float | None:
    values = [r.valid_loss for r in bucket if r.valid_loss is not None]
    return _mean(values) if values else None


def _carried(values: list[float | None]) -> list[float]:
    """Fill gaps with the previous value (leading gaps with the first value)."""
    first = next(v for v in values if v is not None)
    out: list[float] = []
    for value in values:
        out.append(value if value is not None else (out[-1] if out else first))
    return out


def _axis(low: float, high: float) -> tuple[float, float]:
    """A y range with a margin, on round tenths, never below zero."""
    margin = (high - low) * 0.05 or 0.1
    return max(0.0, math.floor((low - margin) * 10) / 10), math.ceil((high + margin) * 10) / 10


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")
