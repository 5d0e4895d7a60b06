"""What the terminal and the markdown views of a Plan share: marks, short values, one line of
details per action, the summary line. Pure: data in, str out."""

from __future__ import annotations

import re
from typing import Any

from ftops.catalog import approximated
from ftops.cost import format_usd
from ftops.errors import Diagnostic
from ftops.plan import STARTS_JOB, Action, ActionType, Plan

MARK = {
    ActionType.UPLOAD: "+",
    ActionType.TRAIN: "+",
    ActionType.REPLACE: "~",
    ActionType.RETRY: "~",
    ActionType.RETRAIN: "~",  # trains again what was deleted, like a retry (🔁)
    ActionType.CANCEL: "-",
    ActionType.DELETE: "-",
    ActionType.OK: "=",
    ActionType.RETIRED: "!",
    ActionType.PENDING: "*",
    ActionType.BLOCKED: "#",
    ActionType.DEPLOY: "+",
    ActionType.REDEPLOY: "~",
}
EMOJI = {"+": "➕", "~": "🔁", "-": "➖", "=": "✅", "!": "⛔", "*": "⏳", "#": "⏸️"}
_HASH = re.compile(r"[0-9a-f]{64}")


def short(value: Any) -> str:
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
    return "cost unknown" if cost is None else f"est. {format_usd(cost)}"


def details(action: Action) -> str:
    """One short line saying what the action is about."""
    d = action.display
    parts: list[str] = []
    if action.upload is not None:
        parts.append(f"sha256 {short(action.upload.sha256)}, {_size(action.upload.size)}")
        if len(action.upload.datasets) > 1:
            parts.append("also " + ", ".join(action.upload.datasets[1:]))
    elif action.deploy is not None:  # a deployment: what it will serve, how
        serves = action.deploy.model_id or f"model.{action.deploy.model}'s fine-tuned model"
        parts.append(f"serves {serves} ({action.deploy.sku}, capacity {action.deploy.capacity})")
    elif action.action in (ActionType.OK, ActionType.RETIRED):
        parts.append(d.model_id or "(no model id reported)")
    elif action.action == ActionType.PENDING:
        parts.append(f"{d.status} ({action.job_id})")
    elif action.action == ActionType.RETRY:
        parts.append(f"job {action.job_id} failed: {d.error}")
    elif action.action in (ActionType.TRAIN, ActionType.RETRAIN) and action.training:
        base = action.training.base or f"model.{action.training.parent}"
        parts.append(f"from {base}")
        if action.training.training_type:  # Azure: where and when the job runs
            parts.append(f"training type {action.training.training_type}")
        if action.training.base and approximated(action.training.base):
            parts.append("tokens and cost are an estimate (another model's tokenizer)")
    if d.note:
        parts.append(d.note)
    if action.action in STARTS_JOB:
        parts.append(_cost(action))
    return "; ".join(parts)


def summary_line(plan: Plan) -> str:
    counts = plan.summary
    line = ", ".join(f"{counts[k]} to {k}" for k in ("upload", "train", "replace", "delete"))
    extra = [f"{counts[k]} to {k}" for k in ("retry", "retrain", "cancel", "deploy",
                                              "redeploy") if counts[k]]
    extra += [f"{counts[k]} {k}" for k in ("blocked", "retired") if counts[k]]
    return ", ".join([line, *extra])


def as_of_line(day: str) -> str:
    """The first line of a run on a pinned day: dates decide actions, so say which one."""
    return f"as of {day} (FTOPS_TODAY)"


def cost_line(plan: Plan) -> str:
    unknown = any(a.action in STARTS_JOB and a.display.cost_usd is None for a in plan.actions)
    return format_usd(plan.estimated_cost_usd) + (" + unknown" if unknown else "")


def cell(value: Any) -> str:
    """Text safe inside a table cell: no row breaks, no HTML, no column breaks."""
    text = " ".join(str(value).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def code(value: Any) -> str:
    return "`" + cell(short(value)).replace("`", "'") + "`"




def notice_line(notice: Diagnostic) -> str:
    """A notice on one line; a grouped one whose message does not name its models (a provider's
    last day for new jobs) lists them, so each (provider, date) line says whom it is about."""
    names = [p.subject.removeprefix("model.") for p in notice.places
             if p.subject.startswith("model.")]
    text = str(notice)
    if names and not any(name in notice.message for name in names):
        return f"{text} ({', '.join(sorted(names))})"
    return text


UNDECLARED = "undeclared"  # the code of the planner's notice of what only --prune shows


def matches_line(plan: Plan) -> str:
    """The end of a plan without changes: it matches the specs only if nothing undeclared is
    left on the account (the planner's ``undeclared`` notice counts it)."""
    if any(w.code == UNDECLARED for w in plan.warnings):
        return "No changes to declared models and datasets; see the warning on what --prune shows."
    return "No changes. The account matches the specs."
