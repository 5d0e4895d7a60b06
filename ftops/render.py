"""Views of a Plan for people (text, markdown) and machines (json). Pure: data in, str out."""

from __future__ import annotations

import re
from typing import Any

from ftops.plan import STARTS_JOB, Action, ActionType, Notice, Plan

_MARK = {
    ActionType.UPLOAD: "+",
    ActionType.TRAIN: "+",
    ActionType.REPLACE: "~",
    ActionType.RETRY: "~",
    ActionType.CANCEL: "-",
    ActionType.DELETE: "-",
    ActionType.OK: "=",
    ActionType.RETIRED: "!",
    ActionType.PENDING: "*",
    ActionType.BLOCKED: "#",
}
_EMOJI = {"+": "➕", "~": "🔁", "-": "➖", "=": "✅", "!": "⛔", "*": "⏳", "#": "⏸️"}
_HASH = re.compile(r"[0-9a-f]{64}")


def _short(value: Any) -> str:
    """Values as people read them; 64-hex hashes cut to 12 characters like git does."""
    if value is None:
        return "(none)"
    text = str(value)
    return text[:12] if _HASH.fullmatch(text) else text


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    amount = size / 1000
    for unit in ("KB", "MB"):
        if amount < 1000:
            return f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} GB"


def _cost(action: Action) -> str:
    cost = action.display.cost_usd
    return "cost unknown" if cost is None else f"est. ${cost:.2f}"


def _details(action: Action) -> str:
    """One short line saying what the action is about."""
    d = action.display
    parts: list[str] = []
    if action.upload is not None:
        parts.append(f"sha256 {_short(action.upload.sha256)}, {_size(action.upload.size)}")
        if len(action.upload.datasets) > 1:
            parts.append("also " + ", ".join(action.upload.datasets[1:]))
    elif action.action in (ActionType.OK, ActionType.RETIRED):
        parts.append(d.model_id or "(no model id reported)")
    elif action.action == ActionType.PENDING:
        parts.append(f"{d.status} ({action.job_id})")
    elif action.action == ActionType.RETRY:
        parts.append(f"job {action.job_id} failed: {d.error}")
    elif action.action == ActionType.TRAIN and action.training is not None:
        base = action.training.base or f"model.{action.training.parent}"
        parts.append(f"from {base}")
    if d.note:
        parts.append(d.note)
    if action.action in STARTS_JOB:
        parts.append(_cost(action))
    return "; ".join(parts)


def _summary_line(plan: Plan) -> str:
    counts = plan.summary
    line = ", ".join(f"{counts[k]} to {k}" for k in ("upload", "train", "replace", "delete"))
    extra = [f"{counts[k]} to {k}" for k in ("retry", "cancel") if counts[k]]
    extra += [f"{counts[k]} {k}" for k in ("blocked", "retired") if counts[k]]
    return ", ".join([line, *extra])


def as_of_line(day: str) -> str:
    """The first line of a run on a pinned day: dates decide actions, so say which one."""
    return f"as of {day} (FTOPS_TODAY)"


def _cost_line(plan: Plan) -> str:
    unknown = any(a.action in STARTS_JOB and a.display.cost_usd is None for a in plan.actions)
    return f"${plan.estimated_cost_usd:.2f}" + (" + unknown" if unknown else "")


def render_text(plan: Plan) -> str:
    """Terraform-style: one line per action, field diffs under it, then the summary line."""
    lines: list[str] = [as_of_line(str(plan.today)), ""] if plan.as_of else []
    width = max((len(a.address) for a in plan.actions), default=0)
    for action in plan.actions:
        head = f"  {_MARK[action.action]} {action.action.value:<8} {action.address:<{width}}"
        details = _details(action)
        lines.append(f"{head}  {details}".rstrip() if details else head.rstrip())
        lines.extend(f"      {c.path}: {_short(c.before)} -> {_short(c.after)}"
                     for c in action.changes)
    if plan.warnings:
        lines += ["", "Warnings:", *(f"  ! {w}" for w in plan.warnings)]
    if plan.errors:
        lines += ["", "Errors:", *(f"  x {e}" for e in plan.errors)]
    lines.append("")
    if plan.has_changes:
        lines.append(f"Plan: {_summary_line(plan)}. Estimated cost: {_cost_line(plan)}.")
    elif plan.needs_attention:
        lines.append(f"No changes apply can make; {_summary_line(plan)}.")
    else:
        lines.append("No changes. The account matches the specs.")
    if plan.errors:
        lines.append(f"The plan has {len(plan.errors)} error(s); apply will refuse it.")
    return "\n".join(lines).lstrip("\n") + "\n"


def _cell(value: Any) -> str:
    """Text safe inside a table cell: no row breaks, no HTML, no column breaks."""
    text = " ".join(str(value).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _code(value: Any) -> str:
    return "`" + _cell(_short(value)).replace("`", "'") + "`"


def render_markdown(plan: Plan) -> str:
    """For a PR comment: summary, a table of actions, field diffs, warnings and errors."""
    out = [f"#### ftops plan · {plan.as_of}" if plan.as_of else "#### ftops plan", ""]
    if plan.has_changes:
        out.append(f"**Plan: {_summary_line(plan)}** · estimated cost **{_cost_line(plan)}**")
    elif plan.needs_attention:
        out.append(f"**No changes apply can make;** {_summary_line(plan)}.")
    else:
        out.append("**No changes.** The account matches the specs.")
    if plan.errors:
        out.append(f"\n**{len(plan.errors)} error(s): apply will refuse this plan.**")
    if plan.actions:
        out += ["", "| | Action | Address | Details |", "|:-:|---|---|---|"]
        out += [f"| {_EMOJI[_MARK[a.action]]} | {a.action.value} | {_code(a.address)} | "
                f"{_cell(_details(a))} |" for a in plan.actions]
    for action in (a for a in plan.actions if a.changes):
        out += ["", f"<details><summary><code>{_cell(action.address)}</code>: "
                f"{len(action.changes)} field(s) differ</summary>", "",
                "| Field | Before | After |", "|---|---|---|"]
        out += [f"| {_code(c.path)} | {_code(c.before)} | {_code(c.after)} |"
                for c in action.changes]
        out += ["", "</details>"]
    if plan.errors:
        out += ["", "**Errors**", *_notices_markdown("❌", plan.errors)]
    if plan.warnings:
        out += ["", "**Warnings**", *_notices_markdown("⚠️", plan.warnings)]
    out += ["", f"<sub>plan_hash <code>{plan.plan_hash}</code></sub>"]
    return "\n".join(out) + "\n"


def _notices_markdown(mark: str, notices: tuple[Notice, ...]) -> list[str]:
    """One bullet per notice; a grouped one lists where each of its models is declared."""
    out = []
    for notice in notices:
        out.append(f"- {mark} {_code(notice.subject)}: {_cell(notice.message)}")
        out += [f"  - {_code(f'{p.path}:{p.line}' if p.line else p.path)} {_cell(p.subject)}"
                for p in notice.places if p.path]
    return out


def render_json(plan: Plan) -> str:
    return plan.to_json()
