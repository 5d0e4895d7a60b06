"""``ftops status``: each declared model's state, job and model id, and ``ftops.lock`` written
from the account; ``--markdown`` adds a loss chart per trained model."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ftops import lock
from ftops.commands import session
from ftops.commands.reports import loss_markdown, status_markdown
from ftops.errors import Diagnostic
from ftops.plan import Kind, Plan
from ftops.project import load_project
from ftops.render.common import notice_line


@dataclass(frozen=True)
class StatusOptions:
    specs: Path = Path("specs")
    emulator: bool = False
    markdown: bool = False
    today: dt.date | None = None


@dataclass(frozen=True)
class StatusRun:
    rows: list[dict[str, object]]
    markdown: str
    warnings: tuple[Diagnostic, ...] = ()  # the plan's: shutdown dates, provider cut-offs
    as_of: str = ""  # "as of <day>" when FTOPS_TODAY pinned the day, else ""


def run(options: StatusOptions) -> StatusRun:
    project = load_project(options.specs)
    with session.connect(project, emulator=options.emulator) as remotes:
        plan = session.make_plan(project, remotes, today=options.today)
        locked = session.refresh_lock(project, remotes, plan)
        charts = loss_markdown(project, remotes, locked) if options.markdown else ""
    rows = status_rows(plan, locked)
    text = (status_markdown(rows, charts, plan.warnings, as_of=plan.as_of)
            if options.markdown else "")
    return StatusRun(rows, text, plan.warnings, plan.as_of)


def status_rows(plan: Plan, locked: lock.Lock) -> list[dict[str, object]]:
    """One row per declared model: what the planner concluded and what the lock records."""
    rows: list[dict[str, object]] = []
    for action in plan.actions:
        if action.kind != Kind.MODEL:
            continue
        entry = locked.models.get(action.name)
        rows.append({
            "name": action.name,
            "state": action.action.value,
            "status": entry.status if entry else None,
            "job_id": entry.job_id if entry else None,
            "fine_tuned_model": entry.fine_tuned_model if entry else None,
            "fingerprint": entry.fingerprint if entry else None,
            "retired": action.display.retired_on,
            "deleted": bool(entry and entry.deleted),  # its fine-tuned model is gone (retrain)
        })
    return sorted(rows, key=lambda r: str(r["name"]))


def status_text(run: StatusRun) -> str:
    """The terminal table: a header row, one row per model, then the plan's warnings."""
    lines = [f"{run.as_of} (FTOPS_TODAY)"] if run.as_of else []
    lines.append(_row("MODEL", "STATE", "STATUS", "JOB", "MODEL ID"))
    for row in run.rows:
        retired = f" (stopped answering on {row['retired']})" if row["retired"] else ""
        retired += " (deleted)" if row["deleted"] else ""
        lines.append(_row(str(row["name"]), str(row["state"]), str(row["status"] or "-"),
                          str(row["job_id"] or "-"),
                          f"{row['fine_tuned_model'] or '-'}{retired}"))
    lines += [f"! {notice_line(w)}" for w in run.warnings]
    return "\n".join(lines) + "\n"


def _row(name: str, state: str, status: str, job: str, model: str) -> str:
    return f"{name:<24} {state:<8} {status:<16} {job:<28} {model}".rstrip()
