"""What the GitHub Action writes besides the plan itself: the PR comment's dataset sections
(token counts, what the pull request changed in each dataset and what it costs), the status
table, loss charts from each job's results file, and the step outputs' values."""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from ftops import cost, gitinfo, lock, render
from ftops.datadiff import dataset_diff, dataset_diff_markdown
from ftops.errors import Diagnostic, FtopsError
from ftops.formats import check
from ftops.plan import Plan
from ftops.project import Project
from ftops.providers import Remote
from ftops.render.charts import loss_chart_markdown
from ftops.spec import ResolvedModel
from ftops.tokens import TokenCounter, get_encoding

PLAN_FILE_NAME = "ftops-plan.json"


def marker_key(project: Project, specs: Path) -> str:
    """The spec path relative to the repository: one sticky comment per spec directory."""
    return gitinfo.repo_path(project.root, specs)


def model_ids(locked: lock.Lock) -> dict[str, str]:
    return {name: e.fine_tuned_model for name, e in sorted(locked.models.items())
            if e.fine_tuned_model}


def runner_plan_path(env: Mapping[str, str]) -> Path:
    """Where plan and apply save the plan in GitHub Actions (the ``plan-json`` output)."""
    return Path(env.get("RUNNER_TEMP") or tempfile.gettempdir()) / PLAN_FILE_NAME


def plan_markdown(project: Project, plan: Plan, *, base_sha: str | None = None) -> str:
    """The PR comment: the plan, the datasets' token counts and what the pull request changed in
    each dataset (against ``base_sha``)."""
    parts = [render.render_markdown(plan).rstrip("\n"), datasets_markdown(project)]
    if base_sha:
        parts.append(dataset_changes_markdown(project, base_sha))
    return "\n\n".join(p for p in parts if p) + "\n"


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
    return f"{'-' if value < 0 else '+'}${abs(value):,.4f}"


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


def loss_markdown(project: Project, remotes: Mapping[str, Remote],
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
