"""``ftops apply``: upload what is missing and start each job exactly once; in GitHub Actions,
on a push to the default branch, only the plan that was reviewed.

What runs is the plan that was confirmed (shown and approved, or saved), never one made later:
the account is read once more before executing, and when the plan made from that read would do
anything else, apply refuses before any mutating request and names each difference
(``ftops.plandiff``).

The reviewed plan hash is read from the merged pull request's ftops comment. When it differs
from the plan about to be applied (whether either has changes or not), apply refuses with
``plan-changed`` before any mutating request and says so on the pull request; so it does when
the account moves after that check. A push that came from no reviewed pull request (a direct
push, or a fork's pull request that could not be planned) is applied as planned now.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ftops import github, gitinfo, lock, plandiff, render, stop
from ftops.apply import Executor
from ftops.commands import session
from ftops.commands.reports import (
    code_or_dash,
    failure_reason,
    loss_markdown,
    marker_key,
    model_ids,
    runner_plan_path,
)
from ftops.errors import FtopsError, StalePlanError
from ftops.github import ActionsContext
from ftops.mend import Outcome, mend_duplicates
from ftops.plan import Plan
from ftops.project import LOCK_FILE, Project, check_clean, load_project
from ftops.providers import Account
from ftops.state import Actual
from ftops.stop import RequestBudget

if TYPE_CHECKING:
    from ftops import evals

Report = Callable[[str], None]

REVIEW_HINT = "review the new plan in a pull request, or re-run apply with --allow-plan-changed"


class PlanMovedError(StalePlanError):
    """The account (or the specs) moved between the plan that was confirmed and its execution:
    raised before any mutating request, with each difference in words."""


def _no_confirmation(_plan: Plan) -> None:
    """The default for callers that confirmed already (tests, the Action with --auto-approve)."""


@dataclass(frozen=True)
class ApplyOptions:
    specs: Path = Path("specs")
    plan_file: Path | None = None  # a saved plan: applied as it is, or refused when stale
    emulator: bool = False
    prune: bool = False
    allow_delete_models: bool = False
    parallel: int = 4
    wait: bool = False
    timeout: float | None = None
    allow_dirty: bool = False
    commit_lock: bool = False
    allow_plan_changed: bool = False
    confirm: Callable[[Plan], None] = _no_confirmation  # raises to refuse
    auto_approve: bool = False  # confirm asks nobody: the plan runs as soon as it is made
    report: Report = print
    env: Mapping[str, str] | None = None
    today: dt.date | None = None


@dataclass(frozen=True)
class ApplyRun:
    plan: Plan
    outcome: Outcome
    lock: lock.Lock
    lock_commit: str | None  # sha of the ftops.lock commit, None when not asked or unchanged
    eval_results: tuple[evals.EvalResult, ...] = field(default=())  # --wait: the gates run


def run(options: ApplyOptions) -> ApplyRun:
    env = os.environ if options.env is None else options.env
    ctx = github.actions_context(env)
    project = load_project(options.specs)
    if not options.allow_dirty:
        check_clean(project)
    saved = (Plan.from_json(options.plan_file.read_text(encoding="utf-8"),
                            source=str(options.plan_file)) if options.plan_file else None)
    if saved is not None:  # a saved plan carries its own prune options
        options = _with_prune(options, saved.inputs.prune, saved.inputs.allow_delete_models)
    key = marker_key(project, options.specs)
    budget = RequestBudget(options.parallel)  # every request of this apply, reads included
    with session.connect(project, emulator=options.emulator) as remotes:
        shown = None
        if saved is None:
            shown = session.read_actual(remotes, budget)
            plan = session.plan_for(project, remotes, shown, prune=options.prune,
                                    allow_delete_models=options.allow_delete_models,
                                    today=options.today)
            options.report(render.render_text(plan).rstrip("\n"))
        else:
            plan = saved
        if ctx is not None:
            _check_reviewed(ctx, key, plan, allow_changed=options.allow_plan_changed,
                            report=options.report)
        if saved is None:  # a saved plan was reviewed when it was saved, as in Terraform
            options.confirm(plan)
        # Executed at once, the plan's own read is the look before executing; while a person
        # confirms (or a saved plan waits) the account may move, so it is read again.
        execution = Execution(plan, saved is not None, budget,
                              shown if options.auto_approve else None)
        result, charts = _execute(project, remotes, execution, options, ctx=ctx, key=key)
    if ctx is not None:
        _publish(ctx, key, result, charts, env, options.plan_file)
    return result


def _with_prune(options: ApplyOptions, prune: bool, allow_delete_models: bool) -> ApplyOptions:
    return replace(options, prune=prune, allow_delete_models=allow_delete_models)


@dataclass(frozen=True)
class Execution:
    """The confirmed plan, and how it runs: saved or just shown, the run's request budget and
    the read it was made from when that read still serves as the look before executing."""

    plan: Plan
    saved: bool
    budget: RequestBudget
    shown: Actual | None


def _execute(project: Project, remotes: Mapping[str, Account], execution: Execution,
             options: ApplyOptions, *, ctx: ActionsContext | None,
             key: str) -> tuple[ApplyRun, str]:
    """Apply, write the lock, run the eval gates after --wait, commit the lock if asked."""
    plan = execution.plan
    try:
        outcome, after = _apply(project, remotes, execution, options)
    except stop.Interrupted as stopped:  # SIGINT/SIGTERM: keep in the lock what was started
        stop.settle(stopped, lambda: session.refresh_lock(project, remotes, plan),
                    then=stop.APPLY_NEXT)
        raise
    except PlanMovedError as exc:
        if ctx is None:
            raise
        # In the Action the plan just made is the one held to the reviewed plan: when the
        # account moves after that check, what runs would not be what was reviewed either.
        changed = StalePlanError(f"plan-changed: {exc.message[:1].lower()}{exc.message[1:]}",
                                 hint=REVIEW_HINT)
        _report_refused(ctx, key, changed, plan, show_plan=False)
        raise changed from None
    except Exception as exc:  # an API error or a bug too: the Action must say apply failed
        if ctx is not None:
            _report_failure(ctx, key, exc, options.report)
        raise
    with stop.cooperating(f"ftops.lock lists everything started; {stop.APPLY_NEXT}"):
        locked = session.refresh_lock(  # a stop now waits for it
            project, remotes, plan,
            after if after is not None else session.read_actual(remotes, execution.budget))
    gated = None
    if options.wait:  # the gates run only after --wait; their imports (jsonschema) wait too
        from ftops import evals

        gated = evals.gate(project, remotes, locked, parallel=options.parallel,
                           report=options.report)
        locked = gated.lock
    charts = loss_markdown(project, remotes, locked) if ctx is not None and options.wait else ""
    sha = None
    if options.commit_lock:
        env = os.environ if options.env is None else options.env
        sha = gitinfo.commit_file(project.root, LOCK_FILE,
                                  gitinfo.lock_commit_message(len(locked.models)),
                                  gitinfo.default_author(env))
    return ApplyRun(plan, outcome, locked, sha, gated.results if gated else ()), charts


def apply_plan(project: Project, remotes: Mapping[str, Account], plan: Plan, *, saved: bool,
               options: ApplyOptions) -> Outcome:
    """Execute ``plan``, the one confirmed (shown and approved, or saved). The account is read
    once more first: when a plan made from that read would do anything ``plan`` does not, apply
    refuses and names each difference, so nothing runs that nobody saw."""
    execution = Execution(plan, saved, RequestBudget(options.parallel), None)
    return _apply(project, remotes, execution, options)[0]


def _apply(project: Project, remotes: Mapping[str, Account], execution: Execution,
           options: ApplyOptions) -> tuple[Outcome, Actual | None]:
    """``apply_plan``; also returns the account as read after executing, when nothing has
    changed it since (the lock is made from it), else None."""
    plan, saved, budget = execution.plan, execution.saved, execution.budget
    if plan.errors:
        raise FtopsError("the plan has errors: " + "; ".join(str(e) for e in plan.errors))
    actual = (execution.shown if execution.shown is not None
              else session.read_actual(remotes, budget))
    fresh = session.plan_for(project, remotes, actual, prune=options.prune,
                             allow_delete_models=options.allow_delete_models,
                             today=options.today)
    moved = plandiff.differences(plan, fresh)
    if moved:
        if saved:
            raise PlanMovedError("Saved plan is stale: " + "; ".join(moved),
                                 hint="run `ftops plan` again and review the new plan")
        raise PlanMovedError("The account changed since the plan was shown: "
                             + "; ".join(moved),
                             hint="run `ftops apply` again to see and confirm the new plan")
    executor = Executor(plandiff.executable(plan, fresh), remotes, root=project.root,
                        parallel=budget, wait_for_jobs=options.wait,
                        timeout=options.timeout, known=actual, report=options.report)
    outcome = executor.run()
    changed = outcome.uploaded or outcome.started or outcome.deduplicated or outcome.pruned
    # Duplicates a crash left behind are already in ``actual``; only our own creates need a
    # fresh look (a no-op apply then reads the account once, not twice): the executor's last
    # look after them, when it read every whole account.
    looked = executor.read_after  # complete, and nothing mended since: the look after
    after = actual if not changed else (
        session.merged(looked.values()) if set(looked) == set(remotes)
        and not outcome.deduplicated else session.read_actual(remotes, budget))
    mended = len(outcome.deduplicated)
    mend_duplicates(remotes, after, outcome, budget)
    return outcome, after if len(outcome.deduplicated) == mended else None


def _publish(ctx: ActionsContext, key: str, result: ApplyRun, charts: str,
             env: Mapping[str, str], plan_file: Path | None) -> None:
    """The job summary, the step outputs and the report on the reviewed pull request."""
    markdown = apply_markdown(result, charts)
    github.write_summary(ctx, markdown)
    if plan_file is None:  # keep the plan that was applied, for the workflow's artifacts
        plan_file = runner_plan_path(env)
        plan_file.write_text(result.plan.to_json(), encoding="utf-8")
    github.write_outputs(ctx, {
        "has-changes": result.plan.has_changes,
        "plan-json": str(plan_file.resolve()),
        "models": model_ids(result.lock),
        "estimated-cost": f"{result.plan.estimated_cost_usd:.2f}",
    })
    if ctx.token:
        github.report_apply(ctx, key, markdown)


def _check_reviewed(ctx: ActionsContext, key: str, plan: Plan, *, allow_changed: bool,
                    report: Report) -> None:
    """On a push to the default branch, the plan must be the one the pull request reviewed,
    whatever either says: a reviewed "no changes" must stay that, and so must a reviewed
    train (a plan with nothing to do is not what was approved either)."""
    if not ctx.is_push_to_default_branch:
        return
    reviewed = github.reviewed_plan_hash(ctx, key)
    if reviewed is None:
        if plan.has_changes:
            report("no reviewed plan found for this commit; applying the current plan")
        return
    try:
        github.check_approval(reviewed, plan.plan_hash, allow_changed=allow_changed)
    except FtopsError as exc:
        _report_refused(ctx, key, exc, plan, show_plan=True)
        raise
    if reviewed != plan.plan_hash:
        report(f"plan differs from the reviewed one ({reviewed[:12]}); "
               "applying it because of --allow-plan-changed")


def _report_refused(ctx: ActionsContext, key: str, exc: FtopsError, plan: Plan, *,
                    show_plan: bool) -> None:
    """The job summary, the outputs and the pull request say apply refused (and, with
    ``show_plan``, what ``plan``, the plan now, would do)."""
    markdown = (f"#### ftops apply refused: plan-changed\n\n{exc}\n\n"
                "Nothing was uploaded or trained.")
    if show_plan:
        markdown += f" The plan now:\n\n{render.render_markdown(plan)}"
    github.write_summary(ctx, markdown)
    github.write_outputs(ctx, {"has-changes": plan.has_changes,
                               "estimated-cost": f"{plan.estimated_cost_usd:.2f}"})
    if ctx.token:
        github.report_apply(ctx, key, markdown)


def _report_failure(ctx: ActionsContext, key: str, exc: Exception, report: Report) -> None:
    """Tell the job summary and the reviewed pull request that apply stopped part-way."""
    markdown = (f"#### ftops apply FAILED\n\n{failure_reason(exc)}\n\n"
                "What was uploaded or started before the error stays; `ftops status` shows it.")
    github.write_summary(ctx, markdown)
    if not ctx.token:
        return
    try:
        github.report_apply(ctx, key, markdown)
    except FtopsError as github_error:  # the apply error is the one the job must show
        report(f"could not report the failure on the pull request: {github_error}")


def apply_markdown(run: ApplyRun, charts: str = "") -> str:
    outcome = run.outcome
    verdict = "succeeded" if outcome.ok and all(r.passed for r in run.eval_results) else "FAILED"
    lines = [f"#### ftops apply {verdict}", "",
             f"{len(outcome.uploaded)} uploaded, {len(outcome.started)} started, "
             f"{len(outcome.pruned)} pruned."]
    lines += [f"- ⏸️ `{name}`: not started: {reason}"
              for name, reason in sorted(outcome.deferred.items())]
    lines += [f"- ❌ `{name}`: {error}" for name, error in sorted(outcome.failed.items())]
    if run.lock.models:
        lines += ["", "| Model | Status | Job | Fine-tuned model |", "|---|---|---|---|"]
        lines += [f"| `{name}` | {e.status} | `{e.job_id}` | {code_or_dash(e.fine_tuned_model)} |"
                  for name, e in sorted(run.lock.models.items())]
    if run.lock_commit:
        lines += ["", f"`{LOCK_FILE}` committed as `{run.lock_commit[:12]}`."]
    if run.eval_results:
        from ftops import evals

        lines += ["", evals.results_markdown(run.eval_results).rstrip("\n")]
    if charts:
        lines += ["", charts]
    return "\n".join(lines) + "\n"
