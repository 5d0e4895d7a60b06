"""Eval results as the one-line summary, the ``ftops eval`` text and JSON, and the pull
request's markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ftops.evals.results import EvalResult


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:,.4f}"


def summary_line(result: EvalResult) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    line = (f"model {result.model}: eval {result.eval} {verdict}: score "
            f"{result.candidate.score:.3f} ({sum(result.candidate.passed)}/{result.examples})")
    if result.comparison is not None:
        line += (f" vs {result.comparison_label} {result.comparison.run.model_id} "
                 f"{result.comparison.score:.3f}")
    return line + "".join(f"; {reason}" for reason in result.reasons)


def results_text(results: Sequence[EvalResult]) -> str:
    if not results:
        return "no evals to run\n"
    lines = []
    for result in results:
        lines.append(summary_line(result))
        for label, scored in (("model", result.candidate), (result.comparison_label,
                                                            result.comparison)):
            if scored is None:
                continue
            counts = ", ".join(f"{c} {n}/{result.examples}"
                               for c, n in scored.check_counts(result.checks).items())
            cached = " (cached)" if scored.run.cached else ""
            lines.append(f"  {label}: {counts}; {scored.run.tokens:,} tokens; est. cost "
                         f"{_usd(scored.run.cost_usd)}{cached}")
    return "\n".join(lines) + "\n"


def results_json(results: Sequence[EvalResult]) -> str:
    return json.dumps({"evals": [r.to_dict() for r in results]}, indent=2, sort_keys=True) + "\n"


def _cell(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    flat = flat if len(flat) <= limit else flat[:limit - 1] + "…"
    return "`" + flat.replace("|", "\\|").replace("`", "'") + "`" if flat else "—"


def results_markdown(results: Sequence[EvalResult]) -> str:
    """For the pull request: per model a table of score vs comparison, pass/fail and cost, and
    up to three examples where the models disagree."""
    if not results:
        return ""
    parts = ["#### ftops eval"]
    for r in results:
        verdict = "✅ passed" if r.passed else "❌ FAILED"
        gate = ", ".join(f"{k} {v:g}" for k, v in (("min_score", r.min_score),
                                                    ("min_improvement", r.min_improvement))
                         if v is not None) or "no threshold"
        lines = [f"##### `{r.model}`: eval `{r.eval}` {verdict}", "",
                 f"{r.examples} examples; checks: {', '.join(f'`{c}`' for c in r.checks)}; "
                 f"gate: {gate}.", "",
                 "| | Model | Score | " + " | ".join(f"`{c}`" for c in r.checks)
                 + " | Tokens | Est. cost |",
                 "|---|---|--:|" + "--:|" * len(r.checks) + "--:|--:|"]
        for label, scored in (("candidate", r.candidate), (r.comparison_label, r.comparison)):
            if scored is None:
                continue
            counts = " | ".join(str(n) for n in scored.check_counts(r.checks).values())
            lines.append(f"| {label} | `{scored.run.model_id}` | {scored.score:.3f} | {counts} | "
                         f"{scored.run.tokens:,} | {_usd(scored.run.cost_usd)} |")
        lines += [f"- {reason}" for reason in r.reasons]
        if r.disagreements:
            lines += ["", f"| Line | Prompt | Reference | `{r.model}` | {r.comparison_label} |",
                      "|--:|---|---|---|---|"]
            lines += [f"| {d.line} | {_cell(d.question)} | {_cell(d.reference)} | "
                      f"{_cell(d.output)} | {_cell(d.comparison)} |" for d in r.disagreements]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
