"""The GitHub Actions flow of plan, apply and status, callable without the CLI.

Outside GitHub Actions these are the plain commands. Inside (``GITHUB_ACTIONS=true``), plan posts
or edits the sticky pull request comment and writes the job summary and step outputs; apply on a
push to the default branch refuses a plan other than the one reviewed in the merged pull request,
reports its outcome on that pull request and can commit ``ftops.lock``. A pull request from a fork
has no secrets: plan then validates offline and explains why in the summary.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ftops import engine, evals, github, gitinfo, lock, render
from ftops.apply import Outcome
from ftops.cost import default_epochs
from ftops.datadiff import dataset_diff, dataset_diff_markdown
from ftops.errors import FtopsError
from ftops.formats import check
from ftops.github import ActionsContext, Comment
from ftops.plan import Notice, Plan
from ftops.providers import Remote
from ftops.render.charts import loss_chart_markdown
from ftops.spec import ResolvedModel
from ftops.tokens import TokenCounter, get_encoding
from ftops.validate import ValidationReport, validate

Report = Callable[[str], None]
PLAN_FILE_NAME = "ftops-plan.json"


@dataclass(frozen=True)
class PlanRun:
    """``plan`` is None when a fork's pull request had no key and ``validation`` ran instead."""

    plan: Plan | None
    validation: ValidationReport | None = None
    comment: Comment | None = None


@dataclass(frozen=True)
class ApplyRun:
    plan: Plan
    outcome: Outcome
    lock: lock.Lock
    lock_commit: str | None  # sha of the ftops.lock commit, None when not asked or unchanged
    eval_results: tuple[evals.EvalResult, ...] = ()  # apply --wait: the eval gates run


@dataclass(frozen=True)
class StatusRun:
    rows: list[dict[str, object]]
    markdown: str
    warnings: tuple[Notice, ...] = ()  # the plan's: shutdown dates, provider cut-offs
    as_of: str = ""  # "as of <day>" when FTOPS_TODAY pinned the day, else ""


def marker_key(project: engine.Project, specs: Path) -> str:
    """The spec path relative to the repository: one sticky comment per spec directory."""
    return gitinfo.repo_path(project.root, specs)


def model_ids(locked: lock.Lock) -> dict[str, str]:
    return {name: e.fine_tuned_model for name, e in sorted(locked.models.items())
            if e.fine_tuned_model}


# --- plan ---------------------------------------------------------------------------------------


def run_plan(specs: Path, *, emulator: bool = False, prune: bool = False,
             allow_delete_models: bool = False, out: Path | None = None, comment: bool = False,
             env: Mapping[str, str] | None = None, today: dt.date | None = None) -> PlanRun:
    """Plan; in GitHub Actions also comment (when asked), write the summary and the outputs."""
    env = os.environ if env is None else env
    ctx = github.actions_context(env)
    if comment and ctx is None:
        raise FtopsError("--comment works only in GitHub Actions (GITHUB_ACTIONS is not true)",
                         hint="drop --comment when running locally")
    if ctx is not None and github.is_fork_without_secrets(ctx, bool(env.get("OPENAI_API_KEY"))):
        return _offline_plan(ctx, specs)
    project = engine.load_project(specs)
    with engine.connect(project, emulator=emulator) as remotes:
        plan = engine.make_plan(project, remotes, prune=prune,
                                allow_delete_models=allow_delete_models, today=today)
    if out is None and ctx is not None:
        out = runner_plan_path(env)
    if out is not None:
        out.write_text(plan.to_json(), encoding="utf-8")
    if ctx is None:
        return PlanRun(plan)
    markdown = plan_markdown(project, plan, base_sha=ctx.base_sha)
    posted = None
    if comment:
        posted = github.upsert_comment(ctx, markdown, marker_key(project, specs),
                                       plan_hash=plan.plan_hash)
    github.write_summary(ctx, markdown)
    github.write_outputs(ctx, {
        "has-changes": plan.has_changes,
        "plan-json": str(out.resolve()) if out is not None else "",
        "models": model_ids(lock.read_lock(project.root / engine.LOCK_FILE)),
        "estimated-cost": f"{plan.estimated_cost_usd:.2f}",
    })
    return PlanRun(plan, comment=posted)


def runner_plan_path(env: Mapping[str, str]) -> Path:
    """Where plan and apply save the plan in GitHub Actions (the ``plan-json`` output)."""
    return Path(env.get("RUNNER_TEMP") or tempfile.gettempdir()) / PLAN_FILE_NAME


def _offline_plan(ctx: ActionsContext, specs: Path) -> PlanRun:
    report = validate(specs=specs)
    verdict = "passed" if report.ok else "FAILED"
    github.write_summary(ctx, f"{github.fork_notice_markdown()}\n#### Offline validation "
                              f"{verdict}\n\n```text\n{report.to_text().rstrip()}\n```\n")
    return PlanRun(None, validation=report)


def plan_markdown(project: engine.Project, plan: Plan, *, base_sha: str | None = None) -> str:
    """The PR comment: the plan, the datasets' token counts and what the pull request changed in
    each dataset (against ``base_sha``)."""
    parts = [render.render_markdown(plan).rstrip("\n"), datasets_markdown(project)]
    if base_sha:
        parts.append(dataset_changes_markdown(project, base_sha))
    return "\n\n".join(p for p in parts if p) + "\n"


def datasets_markdown(project: engine.Project) -> str:
    rows = ["#### Datasets", "", "| Dataset | Path | Examples | Tokens | sha256 |",
            "|---|---|--:|--:|---|"]
    for ds in project.desired.datasets:
        report = project.reports[ds.name]
        rows.append(f"| `{ds.name}` | `{ds.path}` | {report.examples:,} | "
                    f"{report.billable_tokens:,} | `{ds.sha256[:12]}` |")
    return "\n".join(rows) if project.desired.datasets else ""


def dataset_changes_markdown(project: engine.Project, base_sha: str) -> str:
    """Examples added, removed and changed in each dataset file the pull request touched, with
    the token delta and the training cost delta of the models that train on it."""
    try:
        changed = set(gitinfo.changed_files(project.root, base_sha))
    except FtopsError as exc:
        return f"#### Dataset changes\n\nNot available: {exc}"
    sections = []
    for ds in project.desired.datasets:
        if ds.path not in changed:
            continue
        trainers = [m for m in project.spec.models if m.training == ds.name]
        encoding = trainers[0].encoding if trainers else "o200k_base"
        try:
            diff = dataset_diff(project.root, ds.path, base_sha,
                                count_tokens=_example_tokens(ds.format, encoding))
        except FtopsError as exc:
            sections.append(f"`{ds.path}`: not compared: {exc}")
            continue
        text = dataset_diff_markdown(diff).rstrip("\n")
        cost = _cost_delta(project, trainers, diff.token_delta or 0)
        if cost is not None:
            text += f"\n\nEstimated training cost change: **{_signed_usd(cost)}**"
        sections.append(text)
    if not sections:
        return ""
    return "#### Dataset changes\n\n" + "\n\n".join(sections)


def _example_tokens(fmt: str, encoding: str) -> Callable[[str], int]:
    counter = TokenCounter(get_encoding(encoding))

    def count(line: str) -> int:
        try:
            example = json.loads(line)
        except ValueError:
            return 0
        if not isinstance(example, dict):
            return 0
        return check(fmt, example, counter)[1] or 0

    return count


def _cost_delta(project: engine.Project, trainers: list[ResolvedModel],
                token_delta: int) -> float | None:
    """Per training epoch the delta is billed again; None when no model's price is known."""
    total, known = 0.0, False
    for model in trainers:
        if model.training_usd_per_1m is None:
            continue
        epochs = model.n_epochs or default_epochs(project.reports[model.training].examples)
        total += token_delta * epochs * model.training_usd_per_1m / 1_000_000
        known = True
    return total if known else None


def _signed_usd(value: float) -> str:
    return f"{'-' if value < 0 else '+'}${abs(value):,.4f}"


# --- apply --------------------------------------------------------------------------------------


def run_apply(specs: Path, *, plan_file: Path | None = None, emulator: bool = False,
              prune: bool = False, allow_delete_models: bool = False, parallel: int = 4,
              wait: bool = False, timeout: float | None = None, allow_dirty: bool = False,
              commit_lock: bool = False, allow_plan_changed: bool = False,
              confirm: Callable[[Plan], None] = lambda _plan: None, report: Report = print,
              env: Mapping[str, str] | None = None, today: dt.date | None = None) -> ApplyRun:
    """Apply; in GitHub Actions, on a push to the default branch, only the reviewed plan.

    The reviewed plan hash is read from the merged pull request's ftops comment. When it differs
    from the plan about to be applied, apply refuses with ``plan-changed`` before any mutating
    request and says so on the pull request. A push that came from no reviewed pull request (a
    direct push, or a fork's pull request that could not be planned) is applied as planned now.
    """
    env = os.environ if env is None else env
    ctx = github.actions_context(env)
    project = engine.load_project(specs)
    if not allow_dirty:
        engine.check_clean(project)
    saved = Plan.from_json(plan_file.read_text(encoding="utf-8"), source=str(plan_file)) \
        if plan_file else None
    if saved is not None:
        prune, allow_delete_models = saved.inputs.prune, saved.inputs.allow_delete_models
    key = marker_key(project, specs)
    with engine.connect(project, emulator=emulator) as remotes:
        plan = saved or engine.make_plan(project, remotes, prune=prune,
                                         allow_delete_models=allow_delete_models, today=today)
        if saved is None:
            report(render.render_text(plan).rstrip("\n"))
        if ctx is not None:
            _check_reviewed(ctx, key, plan, allow_changed=allow_plan_changed, report=report)
        if saved is None:  # a saved plan was reviewed when it was saved, as in Terraform
            confirm(plan)
        try:
            outcome = engine.apply_plan(
                project, remotes, plan, saved=saved is not None, prune=prune,
                allow_delete_models=allow_delete_models, parallel=parallel, wait=wait,
                timeout=timeout, today=today, report=report)
        except FtopsError as exc:
            if ctx is not None:
                _report_failure(ctx, key, exc, report)
            raise
        locked = engine.refresh_lock(project, remotes, plan)
        gated = evals.gate(project, remotes, locked, parallel=parallel, report=report) \
            if wait else None
        locked = gated.lock if gated else locked
        charts = loss_markdown(project, remotes, locked) if ctx is not None and wait else ""
    sha = None
    if commit_lock:
        sha = gitinfo.commit_file(project.root, engine.LOCK_FILE,
                                  gitinfo.lock_commit_message(len(locked.models)),
                                  gitinfo.default_author(env))
    result = ApplyRun(plan, outcome, locked, sha, gated.results if gated else ())
    if ctx is not None:
        markdown = apply_markdown(result, charts)
        github.write_summary(ctx, markdown)
        if plan_file is None:  # keep the plan that was applied, for the workflow's artifacts
            plan_file = runner_plan_path(env)
            plan_file.write_text(plan.to_json(), encoding="utf-8")
        github.write_outputs(ctx, {
            "has-changes": plan.has_changes,
            "plan-json": str(plan_file.resolve()),
            "models": model_ids(locked),
            "estimated-cost": f"{plan.estimated_cost_usd:.2f}",
        })
        if ctx.token:
            github.report_apply(ctx, key, markdown)
    return result


def _check_reviewed(ctx: ActionsContext, key: str, plan: Plan, *, allow_changed: bool,
                    report: Report) -> None:
    if not (ctx.is_push_to_default_branch and plan.has_changes):
        return
    reviewed = github.reviewed_plan_hash(ctx, key)
    if reviewed is None:
        report("no reviewed plan found for this commit; applying the current plan")
        return
    try:
        github.check_approval(reviewed, plan.plan_hash, allow_changed=allow_changed)
    except FtopsError as exc:
        markdown = (f"#### ftops apply refused: plan-changed\n\n{exc}\n\n"
                    f"Nothing was uploaded or trained. The plan now:\n\n"
                    f"{render.render_markdown(plan)}")
        github.write_summary(ctx, markdown)
        github.write_outputs(ctx, {"has-changes": plan.has_changes,
                                   "estimated-cost": f"{plan.estimated_cost_usd:.2f}"})
        github.report_apply(ctx, key, markdown)
        raise
    if reviewed != plan.plan_hash:
        report(f"plan differs from the reviewed one ({reviewed[:12]}); "
               "applying it because of --allow-plan-changed")


def _report_failure(ctx: ActionsContext, key: str, exc: FtopsError, report: Report) -> None:
    """Tell the job summary and the reviewed pull request that apply stopped part-way."""
    markdown = (f"#### ftops apply FAILED\n\n{exc}\n\n"
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
        lines += [f"| `{name}` | {e.status} | `{e.job_id}` | {_code(e.fine_tuned_model)} |"
                  for name, e in sorted(run.lock.models.items())]
    if run.lock_commit:
        lines += ["", f"`{engine.LOCK_FILE}` committed as `{run.lock_commit[:12]}`."]
    if run.eval_results:
        lines += ["", evals.results_markdown(run.eval_results).rstrip("\n")]
    if charts:
        lines += ["", charts]
    return "\n".join(lines) + "\n"


# --- status and training results -----------------------------------------------------------------


def run_status(specs: Path, *, emulator: bool = False, markdown: bool = False,
               today: dt.date | None = None) -> StatusRun:
    project = engine.load_project(specs)
    with engine.connect(project, emulator=emulator) as remotes:
        plan = engine.make_plan(project, remotes, today=today)
        locked = engine.refresh_lock(project, remotes, plan)
        charts = loss_markdown(project, remotes, locked) if markdown else ""
    rows = engine.status_rows(plan, locked)
    text = status_markdown(rows, charts, plan.warnings, as_of=plan.as_of) if markdown else ""
    return StatusRun(rows, text, plan.warnings, plan.as_of)


def status_markdown(rows: list[dict[str, object]], charts: str,
                    warnings: tuple[Notice, ...] = (), *, as_of: str = "") -> str:
    title = f"#### ftops status · {as_of}" if as_of else "#### ftops status"
    lines = [title, "", "| Model | State | Status | Job | Fine-tuned model |",
             "|---|---|---|---|---|"]
    lines += [f"| `{r['name']}` | {r['state']} | {r['status'] or '—'} | {_code(r['job_id'])} | "
              f"{_code(r['fine_tuned_model'])} |" for r in rows]
    lines += ["", *(f"> ⚠️ `{w.subject}`: {w.message}" for w in warnings)] if warnings else []
    if charts:
        lines += ["", charts]
    return "\n".join(lines) + "\n"


def _code(value: object) -> str:
    return f"`{value}`" if value else "—"


def loss_markdown(project: engine.Project, remotes: Mapping[str, Remote],
                  locked: lock.Lock) -> str:
    """A loss chart and table for each declared model whose latest job succeeded."""
    sections = []
    for name, entry in sorted(locked.models.items()):
        model = project.spec.model(name)
        remote = remotes.get(entry.provider)
        if entry.status != "succeeded" or model is None or remote is None:
            continue
        cost = None
        if entry.trained_tokens is not None and model.training_usd_per_1m is not None:
            cost = entry.trained_tokens * model.training_usd_per_1m / 1_000_000
        csv_text = results_csv(remote, entry.job_id)
        body = (f"No results file was reported for job `{entry.job_id}`." if csv_text is None
                else loss_chart_markdown(name, csv_text, trained_tokens=entry.trained_tokens,
                                         cost_usd=cost))
        sections.append(f"##### `{name}` training loss\n\n{body.rstrip()}")
    return "\n\n".join(sections)


def results_csv(remote: Remote, job_id: str) -> str | None:
    """The job's first results file. OpenAI serves it base64-encoded; the emulator as CSV."""
    files = remote.result_files(job_id)
    if not files:
        return None
    text = remote.file_text(files[0])
    if text.lstrip().startswith("step"):
        return text
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return text
