"""What the GitHub Action writes besides the plan itself: the PR comment's dataset sections
(token counts, what the pull request changed in each dataset and what it costs), the status
table, loss charts from each job's results file, and the step outputs' values."""

from __future__ import annotations

import base64
import binascii
import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from ftops import cost, gitinfo, lock, render
from ftops.datadiff import dataset_diff, dataset_diff_markdown
from ftops.errors import Diagnostic, FtopsError
from ftops.formats import check
from ftops.plan import Plan
from ftops.project import Project
from ftops.providers import Account, api_error_message
from ftops.render.charts import loss_chart_markdown
from ftops.render.details import DatasetFacts, JobFacts, ModelFacts
from ftops.spec import ResolvedModel
from ftops.spec.schema import METHOD_HYPERPARAMETERS
from ftops.tokens import TokenCounter

PLAN_FILE_NAME = "ftops-plan.json"
# GitHub's limits: a comment holds 65,536 characters (the markers take a few hundred), a step
# summary 1 MiB; a check run's summary 65,535 characters.
COMMENT_BUDGET = 65_000
SUMMARY_BUDGET = 1_000_000
CHECK_BUDGET = 60_000


def failure_reason(exc: BaseException) -> str:
    """Why apply stopped, in one line, whatever raised: ftops' own errors as they read, an API
    error as the error handler words it, anything else as the unexpected error it is."""
    if isinstance(exc, FtopsError):
        return str(exc)
    sdk = sys.modules.get("openai")  # loaded whenever a provider is: no import just to check
    if sdk is not None and isinstance(exc, sdk.APIError):
        return api_error_message(exc)
    message = " ".join(str(exc).split())
    return f"unexpected {type(exc).__name__}{': ' if message else ''}{message}"


def marker_key(project: Project, specs: Path) -> str:
    """The spec path relative to the repository: one sticky comment per spec directory."""
    return gitinfo.repo_path(project.root, specs)


def model_ids(locked: lock.Lock) -> dict[str, str]:
    return {name: e.fine_tuned_model for name, e in sorted(locked.models.items())
            if e.fine_tuned_model}


def runner_plan_path(env: Mapping[str, str]) -> Path:
    """Where plan and apply save the plan in GitHub Actions (the ``plan-json`` output)."""
    return Path(env.get("RUNNER_TEMP") or tempfile.gettempdir()) / PLAN_FILE_NAME


def job_facts(project: Project) -> JobFacts:
    """What dataset analysis adds to the jobs a plan shows: paths, counts, resolved epochs."""
    datasets = {ds.name: DatasetFacts(ds.path, project.reports[ds.name].examples,
                                      project.reports[ds.name].billable_tokens)
                for ds in project.desired.datasets}
    models = {}
    for model in project.desired.models:
        if model.cost_basis is None:
            continue
        epochs, tokens = model.cost_basis
        # Keys the method does not define came from ``options:`` (the provider's own).
        own = METHOD_HYPERPARAMETERS.get(model.method, ())
        models[model.name] = ModelFacts(epochs, cost.billed_tokens(tokens, epochs),
                                        options={k: v for k, v in model.hyperparameters.items()
                                                 if k not in own})
    return JobFacts(datasets, models)


def plan_markdown(project: Project, plan: Plan, *, base_sha: str | None = None,
                  limit: int | None = None, where: str = render.FULL_PLAN) -> str:
    """The PR comment: the plan, the datasets' token counts and what the pull request changed in
    each dataset (against ``base_sha``), in at most ``limit`` bytes: the plan's table comes
    first, so when the dataset sections would crowd it out they are left to ``where``."""
    extras = [datasets_markdown(project)]
    if base_sha:
        extras.append(dataset_changes_markdown(project, base_sha))
    tail = "\n\n".join(e for e in extras if e)
    if limit is not None and _size(tail) > limit // 4:
        tail = f"#### Datasets\n\n{len(project.desired.datasets)} dataset(s): see {where}."
    budget = None if limit is None else limit - _size(tail) - 2
    head = render.render_markdown(plan, job_facts(project), limit=budget, where=where)
    return "\n\n".join(p for p in (head.rstrip("\n"), tail) if p) + "\n"


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def datasets_markdown(project: Project) -> str:
    rows = ["#### Datasets", "", "| Dataset | Path | Examples | Tokens | sha256 |",
            "|---|---|--:|--:|---|"]
    for ds in project.desired.datasets:
        report = project.reports[ds.name]
        rows.append(f"| `{ds.name}` | `{ds.path}` | {report.examples:,} | "
                    f"{report.billable_tokens:,} | `{ds.sha256[:12]}` |")
    return "\n".join(rows) if project.desired.datasets else ""


def dataset_changes_markdown(project: Project, base_sha: str) -> str:
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
    counter = TokenCounter(encoding)

    def count(line: str) -> int:
        try:
            example = json.loads(line)
        except ValueError:
            return 0
        if not isinstance(example, dict):
            return 0
        return check(fmt, example, counter)[1] or 0

    return count


def _cost_delta(project: Project, trainers: list[ResolvedModel],
                token_delta: int) -> float | None:
    """Per training epoch the delta is billed again; None when no model's price is known."""
    total, known = 0.0, False
    for model in trainers:
        if model.training_usd_per_1m is None:
            continue
        epochs = cost.training_epochs(model.n_epochs, project.reports[model.training].examples)
        total += cost.estimate_cost_usd(cost.billed_tokens(token_delta, epochs),
                                        model.training_usd_per_1m) or 0.0
        known = True
    return total if known else None


def _signed_usd(value: float) -> str:
    return ("-" if value < 0 else "+") + cost.format_usd(abs(value))


def status_markdown(rows: list[dict[str, object]], charts: str,
                    warnings: tuple[Diagnostic, ...] = (), *, as_of: str = "") -> str:
    title = f"#### ftops status · {as_of}" if as_of else "#### ftops status"
    lines = [title, "", "| Model | State | Status | Job | Fine-tuned model |",
             "|---|---|---|---|---|"]
    lines += [f"| `{r['name']}` | {r['state']} | {r['status'] or '—'} | "
              f"{code_or_dash(r['job_id'])} | {code_or_dash(r['fine_tuned_model'])} |"
              for r in rows]
    lines += ["", *(f"> ⚠️ `{w.subject}`: {w.message}" for w in warnings)] if warnings else []
    if charts:
        lines += ["", charts]
    return "\n".join(lines) + "\n"


def code_or_dash(value: object) -> str:
    return f"`{value}`" if value else "—"


def loss_markdown(project: Project, remotes: Mapping[str, Account],
                  locked: lock.Lock) -> str:
    """A loss chart and table for each declared model whose latest job succeeded."""
    sections = []
    for name, entry in sorted(locked.models.items()):
        model = project.spec.model(name)
        remote = remotes.get(entry.provider)
        if entry.status != "succeeded" or model is None or remote is None:
            continue
        spent = None
        if entry.trained_tokens is not None:
            spent = cost.estimate_cost_usd(entry.trained_tokens, model.training_usd_per_1m)
        csv_text = results_csv(remote, entry.job_id)
        body = (f"No results file was reported for job `{entry.job_id}`." if csv_text is None
                else loss_chart_markdown(name, csv_text, trained_tokens=entry.trained_tokens,
                                         cost_usd=spent))
        sections.append(f"##### `{name}` training loss\n\n{body.rstrip()}")
    return "\n\n".join(sections)


def results_csv(remote: Account, job_id: str) -> str | None:
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
