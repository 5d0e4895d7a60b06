from __future__ import annotations

import re

import pytest

from ftops.errors import FtopsError
from ftops.render.charts import MAX_POINTS, loss_chart_markdown

HEADER = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"


def test_short_run_exact_markdown() -> None:
    csv_text = HEADER + "1,2.5,0.1,2.6,0.1\n2,1.5,0.3,,\n3,1.0,0.5,1.2,0.4\n"
    out = loss_chart_markdown("support-bot", csv_text, trained_tokens=12345, cost_usd=0.3702)
    assert out == (
        "```mermaid\n"
        '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "#1f77b4, #ff7f0e"}}}}%%\n'
        "xychart-beta\n"
        '    title "support-bot: loss"\n'
        '    x-axis "step" [1, 2, 3]\n'
        '    y-axis "loss" 0.9 --> 2.7\n'
        "    line [2.5, 1.5, 1]\n"
        "    line [2.6, 2.6, 1.2]\n"
        "```\n"
        "\n"
        "Blue: train loss, orange: valid loss.\n"
        "\n"
        "| | |\n"
        "|---|---|\n"
        "| final train loss | 1 |\n"
        "| final valid loss | 1.2 |\n"
        "| trained tokens | 12,345 |\n"
        "| cost | $0.37 |\n"
    )


def test_without_validation_there_is_one_line() -> None:
    csv_text = "step,train_loss\n1,0.8\n2,0.6\n"
    out = loss_chart_markdown("m", csv_text, trained_tokens=None, cost_usd=None)
    assert len(re.findall(r"^    line ", out, re.MULTILINE)) == 1
    assert '"plotColorPalette": "#1f77b4"' in out
    assert "Blue: train loss.\n" in out
    assert "| final valid loss | — |" in out
    assert "| trained tokens | — |" in out and "| cost | — |" in out


def test_long_run_is_downsampled_to_bucket_means() -> None:
    rows = "".join(
        f"{step},{1000 - step},0.5,{(2000 - step) if step % 10 == 0 else ''},\n"
        for step in range(1, 1001)
    )
    out = loss_chart_markdown("big", HEADER + rows, trained_tokens=1, cost_usd=1)
    steps = re.search(r'x-axis "step" \[(.*)\]', out)
    lines = re.findall(r"^    line \[(.*)\]$", out, re.MULTILINE)
    assert steps is not None and len(lines) == 2
    labels = [int(s) for s in steps.group(1).split(", ")]
    assert len(labels) == MAX_POINTS
    assert labels[:3] == [20, 40, 60] and labels[-1] == 1000
    train = [float(v) for v in lines[0].split(", ")]
    valid = [float(v) for v in lines[1].split(", ")]
    assert len(train) == len(valid) == MAX_POINTS
    assert train[0] == sum(1000 - s for s in range(1, 21)) / 20  # mean of steps 1..20
    assert valid[0] == (1990 + 1980) / 2
    assert "(1000 steps shown as 50 averaged points)" in out
    assert "| final train loss | 0 |" in out and "| final valid loss | 1000 |" in out


def test_gaps_in_validation_repeat_the_previous_value() -> None:
    rows = "".join(f"{s},1.0,0.5,{'0.5' if s in (70, 150) else ''},\n" for s in range(1, 201))
    out = loss_chart_markdown("m", HEADER + rows, trained_tokens=None, cost_usd=None)
    valid = re.findall(r"^    line \[(.*)\]$", out, re.MULTILINE)[1].split(", ")
    assert valid == ["0.5"] * MAX_POINTS


def test_title_cannot_break_the_chart() -> None:
    out = loss_chart_markdown(
        'a "quoted"\nname', "step,train_loss\n1,1\n", trained_tokens=None, cost_usd=None
    )
    assert "    title \"a 'quoted' name: loss\"\n" in out


def test_empty_results() -> None:
    out = loss_chart_markdown("m", HEADER, trained_tokens=0, cost_usd=0.0)
    assert out.startswith("No training metrics were reported for `m`.\n")
    assert "mermaid" not in out and "| cost | $0.00 |" in out


def test_bad_csv_is_a_clear_error() -> None:
    with pytest.raises(FtopsError, match=r"training results of m: missing column\(s\) train_loss"):
        loss_chart_markdown("m", "step,loss\n1,2\n", trained_tokens=None, cost_usd=None)
    with pytest.raises(FtopsError, match="training results of m, line 3: not a number"):
        loss_chart_markdown(
            "m", HEADER + "1,2,0,,\n2,abc,0,,\n", trained_tokens=None, cost_usd=None
        )
    with pytest.raises(FtopsError, match="line 2: loss is not finite"):
        loss_chart_markdown("m", HEADER + "1,nan,0,,\n", trained_tokens=None, cost_usd=None)
