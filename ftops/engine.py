"""The core of plan, apply, status and wait, callable without the CLI.

Specs and datasets become ``Desired``; each provider's account becomes ``Actual``; the planner
compares them; the executor applies the result; the lock records it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import openai

from ftops import clock, datasets, emulated, gitinfo, lock, planner, providers
from ftops.apply import Executor, Outcome, follow, mend_duplicates
from ftops.errors import FtopsError, redact
from ftops.identity import fingerprints
from ftops.plan import Plan
from ftops.providers import Remote
from ftops.spec import ResolvedModel, Spec, load_specs
from ftops.state import (
    DEFAULT_PROVIDER,
    Actual,
    Desired,
    DesiredDataset,
    DesiredModel,
    Job,
    RemoteFile,
    RemoteModel,
    Source,
)

LOCK_FILE = "ftops.lock"


@dataclass(frozen=True)
class Project:
    """Specs resolved against their repository, with every dataset analysed."""

    spec: Spec
    desired: Desired
    reports: Mapping[str, datasets.DatasetReport]  # dataset name -> report

    @property
    def root(self) -> Path:
        return self.spec.root


def repo_identity(root: Path) -> str:
    """A stable name for the repository, the same on a laptop and in CI: the origin remote's
    host and path (credentials stripped), else the directory name."""
    return gitinfo.origin_identity(root) or root.name


def model_cost(model: ResolvedModel, report: datasets.DatasetReport) -> float | None:
    epochs = model.n_epochs or datasets.default_epochs(report.examples)
    billed = datasets.billed_tokens(report.billable_tokens, epochs)
    return datasets.estimate_cost_usd(billed, model.training_usd_per_1m)


def load_project(specs: Path) -> Project:
    """Read specs and analyse datasets; any spec or dataset error stops here, before any request.

    Token counts depend on the base model (encoding, per-example limit), so a dataset is analysed
    once per distinct base that trains on it; the analysis cache makes repeats free.
    """
    spec = load_specs(specs)
    cache = spec.root / ".ftops" / "cache"

    def analyze(name: str, encoding: str = "o200k_base",
                limit: int | None = None) -> datasets.DatasetReport:
        ds = spec.dataset(name)
        assert ds is not None  # the spec resolver checked every reference
        report = datasets.analyze(ds.path, fmt=ds.format, encoding=encoding, token_limit=limit,
                                  cache_dir=cache)
        if report.error_count:
            first = report.errors[0]
            raise FtopsError(
                f"dataset {ds.name} has {report.error_count} error(s), first: "
                f"{first.code}: {first.message}", path=ds.display, line=first.line or None,
                hint="run `ftops validate` for the full report")
        return report

    reports = {ds.name: analyze(ds.name) for ds in spec.datasets}
    # Only providers the catalog has facts on get a type; a custom endpoint gets no cut-off dates.
    provider_types = {p.name: None if p.base_url else p.type for p in spec.providers}
    models = tuple(
        DesiredModel(
            name=m.name,
            training=m.training,
            base=None if m.parent else m.base_model,
            parent=m.parent,
            validation=m.validation,
            method=m.method,
            hyperparameters=dict(m.hyperparameters),
            suffix=m.suffix,
            seed=m.seed,
            metadata=dict(m.metadata),
            max_cost_usd=m.max_cost_usd,
            estimated_cost_usd=model_cost(
                m, analyze(m.training, m.encoding, m.example_token_limit)),
            provider=m.provider,
            provider_type=provider_types.get(m.provider, "openai"),
            source=Source(m.file, m.line),
        )
        for m in spec.models
    )
    dataset_states = tuple(
        DesiredDataset(name=ds.name, path=ds.path.relative_to(spec.root).as_posix(),
                       sha256=reports[ds.name].sha256, size=reports[ds.name].size,
                       format=ds.format, source=Source(ds.file, ds.line))
        for ds in spec.datasets
    )
    desired = Desired(datasets=dataset_states, models=models, repo=repo_identity(spec.root),
                      commit=gitinfo.head_commit_or_none(spec.root))
    return Project(spec=spec, desired=desired, reports=reports)


# --- connections ----------------------------------------------------------------------------


@contextmanager
def connect(project: Project, *, emulator: bool = False, max_retries: int = 2,
            job_seconds: float = 3.0) -> Iterator[dict[str, Remote]]:
    """One Remote per provider the specs use, each with its own client (see providers.py);
    with ``emulator``, each on its own embedded emulator."""
    names = {m.provider for m in project.desired.models} or {DEFAULT_PROVIDER}
    repo = project.desired.repo
    with emulated.connections(project.spec.providers, names,
                               emulator_root=project.root if emulator else None,
                               job_seconds=job_seconds, max_retries=max_retries) as conns:
        yield {name: Remote(c.client, repo=repo, provider=name, features=c.features,
                            provider_type=c.provider_type,
                            adopted=providers.adoptions(project.spec.models, repo=repo,
                                                        provider=name))
               for name, c in conns.items()}


def read_actual(remotes: Mapping[str, Remote]) -> Actual:
    files: list[RemoteFile] = []
    jobs: list[Job] = []
    models: list[RemoteModel] = []
    for remote in remotes.values():
        actual = remote.read()
        files += actual.files
        jobs += actual.jobs
        models += actual.models
    return Actual(files=tuple(files), jobs=tuple(jobs), models=tuple(models))


def make_plan(project: Project, remotes: Mapping[str, Remote], *, prune: bool = False,
              allow_delete_models: bool = False, today: dt.date | None = None) -> Plan:
    return _plan(project, remotes, read_actual(remotes), prune=prune,
                 allow_delete_models=allow_delete_models, today=today)


def _plan(project: Project, remotes: Mapping[str, Remote], actual: Actual, *, prune: bool,
          allow_delete_models: bool, today: dt.date | None) -> Plan:
    """The planner on what was read, as of ``today`` (else the one clock), with each model
    held to the dates of the endpoint it really talks to (see ``Remote.calendar``)."""
    calendars = {name: remote.calendar() for name, remote in remotes.items()}
    desired = replace(project.desired, models=tuple(
        replace(m, provider_type=calendars.get(m.provider, m.provider_type))
        for m in project.desired.models))
    aliases = lock.read_lock(project.root / LOCK_FILE).alias_models()
    return planner.plan(desired, actual, prune=prune, allow_delete_models=allow_delete_models,
                        today=today or clock.today(), pinned=today is None and bool(clock.pinned()),
                        aliases=aliases)


# --- apply ------------------------------------------------------------------------------------


def check_clean(project: Project) -> None:
    """Git is the source of truth: refuse to apply specs or data that are not committed."""
    paths = [*project.spec.files, *(d.path for d in project.desired.datasets)]
    dirty = gitinfo.dirty_files(project.root, [project.root / p for p in paths])
    if dirty:
        raise FtopsError(
            "uncommitted changes in " + ", ".join(dirty),
            hint="commit them first, or pass --allow-dirty")


def apply_plan(project: Project, remotes: Mapping[str, Remote], plan: Plan, *,
               saved: bool, prune: bool = False, allow_delete_models: bool = False,
               parallel: int = 4, wait: bool = False, timeout: float | None = None,
               today: dt.date | None = None, report: Callable[[str], None] = print) -> Outcome:
    """Apply ``plan``. A saved plan is compared with a fresh one first and refused when stale."""
    if plan.errors:
        raise FtopsError("the plan has errors: " + "; ".join(str(e) for e in plan.errors))
    actual = read_actual(remotes)
    fresh = _plan(project, remotes, actual, prune=prune, allow_delete_models=allow_delete_models,
                  today=today)
    if saved:
        reasons = plan.is_stale_against(fresh)
        if reasons:
            raise FtopsError("Saved plan is stale: " + "; ".join(reasons),
                             hint="run `ftops plan` again and review the new plan")
    outcome = Executor(plan if saved else fresh, remotes, root=project.root, parallel=parallel,
                       wait_for_jobs=wait, timeout=timeout, known_jobs=actual.jobs,
                       report=report).run()
    changed = outcome.uploaded or outcome.started or outcome.deduplicated or outcome.pruned
    # Duplicates a crash left behind are already in ``actual``; only our own creates need a
    # fresh look (a no-op apply then reads the account once, not twice).
    mend_duplicates(remotes, read_actual(remotes) if changed else actual, outcome)
    return outcome


# --- status, wait, lock -------------------------------------------------------------------------


def current_lock(project: Project, remotes: Mapping[str, Remote],
                 plan: Plan | None = None) -> lock.Lock:
    """``ftops.lock`` as the account says it is now, not written. Models the plan (``plan``,
    else one made from this same read) finds retired are marked with the day."""
    current = lock.read_lock(project.root / LOCK_FILE)
    actual = read_actual(remotes)
    if plan is None:
        plan = _plan(project, remotes, actual, prune=False, allow_delete_models=False, today=None)
    retired = {a.name: a.display.retired_on for a in plan.actions
               if a.kind.value == "model" and a.display.retired_on}
    return lock.update_lock(current, project.desired, actual, retired=retired)


def refresh_lock(project: Project, remotes: Mapping[str, Remote],
                 plan: Plan | None = None) -> lock.Lock:
    """Read the account and write ``ftops.lock`` at the repository root."""
    updated = current_lock(project, remotes, plan)
    lock.write_lock(project.root / LOCK_FILE, updated)
    return updated


def jobs_to_follow(project: Project, remotes: Mapping[str, Remote],
                   names: tuple[str, ...]) -> dict[str, Job]:
    """The current job of each named model (all declared models when none are named)."""
    unknown = sorted(set(names) - {m.name for m in project.desired.models})
    if unknown:
        raise FtopsError("no such model: " + ", ".join(unknown))
    actual = read_actual(remotes)
    prints = fingerprints(project.desired)
    out: dict[str, Job] = {}
    for m in project.desired.models:
        if names and m.name not in names:
            continue
        job = actual.current_job(project.desired.repo, m.provider, prints[m.name])
        if job is not None:
            out[m.name] = job
    return out


def api_error_message(exc: openai.APIError) -> str:
    """One line for an API failure that never echoes a key."""
    if isinstance(exc, openai.AuthenticationError):
        return ("the API rejected the key (401): check OPENAI_API_KEY, or the api_key_env "
                "of the provider in use")
    if isinstance(exc, openai.APIStatusError):
        return f"API error {exc.status_code}: {redact(str(exc.message))}"
    return f"cannot reach the API: {type(exc).__name__}"


def wait_for(project: Project, remotes: Mapping[str, Remote], names: tuple[str, ...], *,
             timeout: float | None, report: Callable[[str], None] = print) -> dict[str, Job]:
    """Follow each named model's current job to its end; returns the final jobs."""
    deadline = None if timeout is None else time.monotonic() + timeout
    jobs = jobs_to_follow(project, remotes, names)
    if not jobs:
        report("no jobs to follow")
    return {
        name: follow(remotes[job.provider], name, job.id, report=report, deadline=deadline)
        for name, job in sorted(jobs.items())
    }


def status_rows(plan: Plan, locked: lock.Lock) -> list[dict[str, object]]:
    """One row per declared model: what the planner concluded and what the lock records."""
    rows: list[dict[str, object]] = []
    for action in plan.actions:
        if action.kind.value != "model":
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
        })
    return sorted(rows, key=lambda r: str(r["name"]))
