"""The plan as the terminal shows it, Terraform-style. Pure: data in, str out."""

from __future__ import annotations

from ftops.plan import Plan
from ftops.render.common import (
    MARK,
    as_of_line,
    cost_line,
    details,
    matches_line,
    notice_line,
    short,
    summary_line,
)


def render_text(plan: Plan) -> str:
    """Terraform-style: one line per action, field diffs under it, then the summary line."""
    lines: list[str] = [as_of_line(str(plan.today)), ""] if plan.as_of else []
    width = max((len(a.address) for a in plan.actions), default=0)
    for action in plan.actions:
        head = f"  {MARK[action.action]} {action.action.value:<8} {action.address:<{width}}"
        about = details(action)
        lines.append(f"{head}  {about}".rstrip() if about else head.rstrip())
        lines.extend(f"      {c.path}: {short(c.before)} -> {short(c.after)}"
                     for c in action.changes)
    if plan.warnings:
        lines += ["", "Warnings:", *(f"  ! {notice_line(w)}" for w in plan.warnings)]
    if plan.errors:
        lines += ["", "Errors:", *(f"  x {e}" for e in plan.errors)]
    lines.append("")
    if plan.has_changes:
        lines.append(f"Plan: {summary_line(plan)}. Estimated cost: {cost_line(plan)}.")
    elif plan.needs_attention:
        lines.append(f"No changes apply can make; {summary_line(plan)}.")
    else:
        lines.append(matches_line(plan))
    if plan.errors:
        lines.append(f"The plan has {len(plan.errors)} error(s); apply will refuse it.")
    return "\n".join(lines).lstrip("\n") + "\n"
