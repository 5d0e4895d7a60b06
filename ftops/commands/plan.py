"""``ftops plan``: read the accounts and show what apply would do; in GitHub Actions also the
sticky PR comment (when asked), the job summary and the step outputs. A pull request from a
fork has no secrets: it is validated offline instead, and the summary says why."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ftops import github, lock, render
from ftops.commands import session
from ftops.commands.reports import (
    CHECK_BUDGET,
    COMMENT_BUDGET,
    SUMMARY_BUDGET,
    job_facts,
    marker_key,
    model_ids,
    plan_markdown,
    runner_plan_path,
)
from ftops.errors import UsageError
from ftops.github import ActionsContext, CheckRun, Comment
from ftops.plan import Plan
from ftops.project import LOCK_FILE, Project, load_project
from ftops.validate import ValidationReport, validate


@dataclass(frozen=True)
class PlanOptions:
    specs: Path = Path("specs")
    emulator: bool = False
    prune: bool = False
    allow_delete_models: bool = False
    out: Path | None = None  # save the plan here (in GitHub Actions: RUNNER_TEMP by default)
    comment: bool = False  # GitHub Actions only: post or edit the sticky comment
    check: bool = False  # GitHub Actions only: write the `ftops plan` check run
    verbose: bool = False  # also each job's details (``PlanRun.details``)
    env: Mapping[str, str] | None = None  # the environment; None: os.environ
    today: dt.date | None = None  # None: the one clock (FTOPS_TODAY or the machine's day)


@dataclass(frozen=True)
class PlanRun:
    """``plan`` is None when a fork's pull request had no key and ``validation`` ran instead."""

    plan: Plan | None
    validation: ValidationReport | None = None
    comment: Comment | None = None
    check: CheckRun | None = None
    details: str = ""  # with ``verbose``: everything each job will be created with


def run(options: PlanOptions) -> PlanRun:
    env = os.environ if options.env is None else options.env
    ctx = github.actions_context(env)
    if (options.comment or options.check) and ctx is None:
        flag = "--comment" if options.comment else "--check"
        raise UsageError(f"{flag} works only in GitHub Actions (GITHUB_ACTIONS is not true)",
                         hint=f"drop {flag} when running locally")
    if ctx is not None and github.is_fork_without_secrets(ctx, bool(env.get("OPENAI_API_KEY"))):
        return _offline_plan(ctx, options.specs)
    project = load_project(options.specs)
    with session.connect(project, emulator=options.emulator) as remotes:
        plan = session.make_plan(project, remotes, prune=options.prune,
                                 allow_delete_models=options.allow_delete_models,
                                 today=options.today)
    out = options.out
    if out is None and ctx is not None:
        out = runner_plan_path(env)
    if out is not None:
        out.write_text(plan.to_json(), encoding="utf-8")
    details = render.details_text(plan, job_facts(project)) if options.verbose else ""
    if ctx is None:
        return PlanRun(plan, details=details)
    posted, check = _publish(ctx, project, plan, options)
    github.write_outputs(ctx, {
        "has-changes": plan.has_changes,
        "plan-json": str(out.resolve()) if out is not None else "",
        "models": model_ids(lock.read_lock(project.root / LOCK_FILE)),
        "estimated-cost": f"{plan.estimated_cost_usd:.2f}",
    })
    return PlanRun(plan, comment=posted, check=check, details=details)


def _publish(ctx: ActionsContext, project: Project, plan: Plan,
             options: PlanOptions) -> tuple[Comment | None, CheckRun | None]:
    """The comment, the job summary and the check run, each within GitHub's size limit; what
    does not fit is left to the job summary, and past that to the plan JSON artifact."""
    run = f"[this workflow run]({ctx.run_url})" if ctx.run_url else "this workflow run"
    json_note = "the plan JSON (the `plan-json` output; the example workflow keeps it as the "
    json_note += "`ftops-plan` artifact)"
    markdown = partial(plan_markdown, project, plan, base_sha=ctx.base_sha)
    posted = check = None
    if options.comment:
        posted = github.upsert_comment(
            ctx, markdown(limit=COMMENT_BUDGET, where=f"the job summary of {run} and {json_note}"),
            marker_key(project, options.specs), plan_hash=plan.plan_hash)
    github.write_summary(ctx, markdown(limit=SUMMARY_BUDGET, where=json_note))
    if options.check:
        title = render.summary_title(plan)
        check = github.report_check(
            ctx, title=title, ok=not plan.errors,
            summary=markdown(limit=CHECK_BUDGET, where=f"the job summary of {run}"))
    return posted, check


def _offline_plan(ctx: ActionsContext, specs: Path) -> PlanRun:
    report = validate(specs=specs)
    verdict = "passed" if report.ok else "FAILED"
    github.write_summary(ctx, f"{github.fork_notice_markdown()}\n#### Offline validation "
                              f"{verdict}\n\n```text\n{report.to_text().rstrip()}\n```\n")
    return PlanRun(None, validation=report)
