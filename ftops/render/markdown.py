"""The plan as a pull request comment (and the job summary) shows it. Pure: data in, str out.

GitHub caps a comment at 65,536 characters and a step summary at 1 MiB, whatever the number of
models, so the parts come in the order a reviewer needs them: the summary line, the action
table, errors and warnings, then each job's collapsed details. With a ``limit``, what does not
fit is left out whole (never half a row or half a ``<details>``), and one line says how many
rows were left out and where the full plan is.
"""

from __future__ import annotations

from ftops.errors import Diagnostic
from ftops.plan import Plan
from ftops.render.common import EMOJI, MARK, cell, code, cost_line, details, summary_line
from ftops.render.details import NO_FACTS, JobFacts, details_markdown

FULL_PLAN = "the job summary of this workflow run"
_TABLE_HEAD = "\n\n| | Action | Address | Details |\n|:-:|---|---|---|"


def render_markdown(plan: Plan, facts: JobFacts = NO_FACTS, *, limit: int | None = None,
                    where: str = FULL_PLAN) -> str:
    """Summary, the table of actions, errors and warnings, each job's details, the plan hash;
    at most ``limit`` bytes of UTF-8 (never fewer than GitHub's UTF-16 count) when given."""
    head = _head(plan)
    footer = f"\n\n<sub>plan_hash <code>{plan.plan_hash}</code></sub>\n"
    rows = [f"\n| {EMOJI[MARK[a.action]]} | {a.action.value} | {code(a.address)} | "
            f"{cell(details(a))} |" for a in plan.actions]
    notices = _notices(plan)
    blocks = [f"\n\n{b}" for b in (details_markdown(a, facts) for a in plan.actions) if b]
    parts = [(kind, text) for kind, texts in (("row", rows), ("notice", notices),
                                              ("details", blocks)) for text in texts]
    if limit is None or _size(head + _TABLE_HEAD + "".join(t for _, t in parts) + footer) <= limit:
        return head + _assemble(parts) + footer
    budget = limit - _size(head + footer + _TABLE_HEAD) - _size(_cut_note(plan, parts, where))
    kept = 0
    for _, text in parts:
        if _size(text) > budget:
            break
        kept += 1
        budget -= _size(text)
    note = _cut_note(plan, parts[kept:], where)
    return head + _assemble(parts[:kept]) + note + footer


def summary_title(plan: Plan) -> str:
    """The summary line in plain words (a check run's title)."""
    if plan.has_changes:
        line = f"Plan: {summary_line(plan)}; estimated cost {cost_line(plan)}"
    elif plan.needs_attention:
        line = f"No changes apply can make; {summary_line(plan)}"
    else:
        line = "No changes: the account matches the specs"
    return line + (f" ({len(plan.errors)} error(s): apply will refuse it)" if plan.errors else "")


def _head(plan: Plan) -> str:
    out = [f"#### ftops plan · {plan.as_of}" if plan.as_of else "#### ftops plan", ""]
    if plan.has_changes:
        out.append(f"**Plan: {summary_line(plan)}** · estimated cost **{cost_line(plan)}**")
    elif plan.needs_attention:
        out.append(f"**No changes apply can make;** {summary_line(plan)}.")
    else:
        out.append("**No changes.** The account matches the specs.")
    if plan.errors:
        out.append(f"\n**{len(plan.errors)} error(s): apply will refuse this plan.**")
    return "\n".join(out)


def _assemble(parts: list[tuple[str, str]]) -> str:
    """The parts kept, rows under the table's head (none when no row is kept)."""
    text = "".join(t for _, t in parts)
    return _TABLE_HEAD + text if parts and parts[0][0] == "row" else text


def _notices(plan: Plan) -> list[str]:
    out = []
    for title, mark, notices in (("Errors", "❌", plan.errors), ("Warnings", "⚠️", plan.warnings)):
        bullets = _notices_markdown(mark, notices)
        if bullets:
            bullets[0] = f"\n\n**{title}**\n{bullets[0]}"
            out += [bullets[0], *(f"\n{b}" for b in bullets[1:])]
    return out


def _notices_markdown(mark: str, notices: tuple[Diagnostic, ...]) -> list[str]:
    """One bullet per notice; a grouped one lists where each of its models is declared."""
    out = []
    for notice in notices:
        where = notice.subject or f"{notice.path}:{notice.line}"  # a spec-form plan error
        lines = [f"- {mark} {code(where)}: {cell(notice.message)}"]
        lines += [f"  - {code(f'{p.path}:{p.line}' if p.line else p.path)} {cell(p.subject)}"
                  for p in notice.places if p.path]
        out.append("\n".join(lines))
    return out


def _cut_note(plan: Plan, left: list[tuple[str, str]], where: str) -> str:
    """The line saying what was left out and where the full plan is."""
    rows = sum(kind == "row" for kind, _ in left)
    notices = sum(kind == "notice" for kind, _ in left)
    blocks = sum(kind == "details" for kind, _ in left)
    parts = [f"{rows} of {len(plan.actions)} action rows"] if rows else []
    parts += [f"{notices} error/warning line(s)"] if notices else []
    parts += [f"{blocks} job details"] if blocks else []
    return (f"\n\n> [!WARNING]\n> Cut to fit GitHub's size limit: {', '.join(parts)} left out. "
            f"The full plan is in {where}.")


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
