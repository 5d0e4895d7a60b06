"""The plan as a pull request comment shows it. Pure: data in, str out."""

from __future__ import annotations

from ftops.errors import Diagnostic
from ftops.plan import Plan
from ftops.render.common import EMOJI, MARK, cell, code, cost_line, details, summary_line


def render_markdown(plan: Plan) -> str:
    """For a PR comment: summary, a table of actions, field diffs, warnings and errors."""
    out = [f"#### ftops plan · {plan.as_of}" if plan.as_of else "#### ftops plan", ""]
    if plan.has_changes:
        out.append(f"**Plan: {summary_line(plan)}** · estimated cost **{cost_line(plan)}**")
    elif plan.needs_attention:
        out.append(f"**No changes apply can make;** {summary_line(plan)}.")
    else:
        out.append("**No changes.** The account matches the specs.")
    if plan.errors:
        out.append(f"\n**{len(plan.errors)} error(s): apply will refuse this plan.**")
    if plan.actions:
        out += ["", "| | Action | Address | Details |", "|:-:|---|---|---|"]
        out += [f"| {EMOJI[MARK[a.action]]} | {a.action.value} | {code(a.address)} | "
                f"{cell(details(a))} |" for a in plan.actions]
    for action in (a for a in plan.actions if a.changes):
        out += ["", f"<details><summary><code>{cell(action.address)}</code>: "
                f"{len(action.changes)} field(s) differ</summary>", "",
                "| Field | Before | After |", "|---|---|---|"]
        out += [f"| {code(c.path)} | {code(c.before)} | {code(c.after)} |"
                for c in action.changes]
        out += ["", "</details>"]
    if plan.errors:
        out += ["", "**Errors**", *_notices_markdown("❌", plan.errors)]
    if plan.warnings:
        out += ["", "**Warnings**", *_notices_markdown("⚠️", plan.warnings)]
    out += ["", f"<sub>plan_hash <code>{plan.plan_hash}</code></sub>"]
    return "\n".join(out) + "\n"


def _notices_markdown(mark: str, notices: tuple[Diagnostic, ...]) -> list[str]:
    """One bullet per notice; a grouped one lists where each of its models is declared."""
    out = []
    for notice in notices:
        where = notice.subject or f"{notice.path}:{notice.line}"  # a spec-form plan error
        out.append(f"- {mark} {code(where)}: {cell(notice.message)}")
        out += [f"  - {code(f'{p.path}:{p.line}' if p.line else p.path)} {cell(p.subject)}"
                for p in notice.places if p.path]
    return out
