"""Desired state (what the specs declare) and actual state (what the account holds).

Both are plain frozen data: the spec layer and dataset analysis fill ``Desired``;
``ftops.providers`` converts SDK objects into ``Actual``. The planner compares the two and never
sees either source.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

DEFAULT_PROVIDER = "openai"

# A hyperparameter value as the API takes it: "auto" or a number.
HyperValue = str | int | float

FINISHED_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Source:
    """Where in the specs something was declared, so errors can name file and line."""

    path: str
    line: int | None = None


@dataclass(frozen=True)
class DesiredDataset:
    name: str
    path: str  # as apply opens it: relative to the repository root, or absolute
    sha256: str
    size: int
    format: str = "chat"
    source: Source | None = None


@dataclass(frozen=True)
class Deploy:
    """An Azure deployment that serves a model: its name (the ``model`` of calls), type and
    capacity (units of 1,000 tokens per minute)."""

    name: str
    sku: str = "standard"
    capacity: int = 1


@dataclass(frozen=True)
class Deployment:
    """A deployment on the provider (Azure): what it serves and whether it is ready."""

    name: str
    model: str  # the model id it serves
    sku: str  # standard | globalstandard | developer (lower case, as the spec writes it)
    capacity: int
    state: str  # Azure's provisioningState: Creating, Succeeded, Failed, Deleting, ...
    provider: str = DEFAULT_PROVIDER


@dataclass(frozen=True)
class ResolvedModel:
    """A models entry with every reference resolved: the one model type that the spec reader
    produces and the planner, the lock, export and evals read.

    Two bases, never confused: ``base_model`` is the literal id at the root of the chain (its
    facts, encoding and price are the model's); ``base`` is what this entry itself names as a
    literal id, None when it chains on ``parent`` (a declared model whose result it trains
    from). ``estimated_cost_usd`` comes from dataset analysis (tokens x epochs x price; None =
    unknown) and ``provider_type`` from the endpoint the provider talks to (``openai``,
    ``azure``; None for one the catalog says nothing about); both are filled in after reading.
    """

    name: str
    training: str  # dataset name
    base_model: str = ""  # the literal id at the root of the chain
    parent: str | None = None  # the declared model this one is trained on, if any
    validation: str | None = None
    method: str = "supervised"
    hyperparameters: Mapping[str, HyperValue] = field(default_factory=dict)  # "auto" kept
    suffix: str | None = None
    seed: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    max_cost_usd: float | None = None
    provider: str = DEFAULT_PROVIDER
    provider_type: str | None = DEFAULT_PROVIDER
    estimated_cost_usd: float | None = None
    cost_basis: tuple[int, int] | None = None  # (epochs, billable tokens) of that estimate
    eval: str | None = None
    promote: str | None = None
    grader: Mapping[str, Any] | None = None
    encoding: str = "o200k_base"
    example_token_limit: int | None = None  # None when the base model is not in the catalog
    training_usd_per_1m: float | None = None  # pricing: override, else catalog, else None
    training_path: Path = Path()
    validation_path: Path | None = None
    file: str = ""  # where the entry is declared
    line: int | None = None
    key_lines: Mapping[str, int] = field(default_factory=dict)  # line of each key written
    adopt: tuple[str, str] | None = None  # (job id, fingerprint) of an adopted job
    training_type: str | None = None  # azure: standard | globalstandard | developer
    deploy: Deploy | None = None  # azure: the deployment serving the trained model
    migrates: str | None = None  # the declared model this one succeeds (`ftops migrate`)

    @property
    def base(self) -> str | None:
        """The literal id this entry trains from, or None when it chains on ``parent``."""
        return None if self.parent else (self.base_model or None)

    @property
    def source(self) -> Source | None:
        return Source(self.file, self.line) if self.file else None

    @property
    def n_epochs(self) -> int | None:
        """The explicit epoch count, or None for "auto"/unset."""
        value = self.hyperparameters.get("n_epochs")
        return value if isinstance(value, int) else None

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key, self.line)


@dataclass(frozen=True)
class Desired:
    """Everything declared, plus where it is declared from (stamped onto jobs, never hashed).

    ``repo`` identifies this repository (e.g. its remote URL); only jobs whose ``ftops_repo``
    metadata equals it belong to this project. ``commit`` is HEAD, recorded for provenance.
    """

    datasets: tuple[DesiredDataset, ...]
    models: tuple[ResolvedModel, ...]
    repo: str = ""
    commit: str | None = None

    def dataset(self, name: str) -> DesiredDataset | None:
        return self._named[0].get(name)

    def model(self, name: str) -> ResolvedModel | None:
        return self._named[1].get(name)

    @cached_property
    def _named(self) -> tuple[dict[str, DesiredDataset], dict[str, ResolvedModel]]:
        """Datasets and models by name (the first of a name), made once: asked per model, a
        scan each time would be quadratic in the size of the specs."""
        datasets: dict[str, DesiredDataset] = {}
        models: dict[str, ResolvedModel] = {}
        for d in self.datasets:
            datasets.setdefault(d.name, d)
        for m in self.models:
            models.setdefault(m.name, m)
        return datasets, models


@dataclass(frozen=True)
class RemoteFile:
    id: str
    filename: str
    bytes: int
    purpose: str
    created_at: int
    provider: str = DEFAULT_PROVIDER
    # Another repository's dataset this one may train on but never deletes (Together keeps one
    # file per content, whoever uploaded it): not pruned, not mended.
    shared: bool = False


@dataclass(frozen=True)
class JobError:
    code: str
    message: str
    param: str | None = None


@dataclass(frozen=True)
class Job:
    """A fine-tuning job. ``method`` is the method type; ``hyperparameters`` its values."""

    id: str
    status: str
    model: str
    training_file: str
    created_at: int
    validation_file: str | None = None
    method: str = "supervised"
    hyperparameters: Mapping[str, HyperValue] = field(default_factory=dict)
    seed: int | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: JobError | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    provider: str = DEFAULT_PROVIDER
    suffix: str | None = None  # where the provider shows it on the job (Azure); else None

    @property
    def live(self) -> bool:
        # Any status the API may add later that is not terminal counts as still running.
        return self.status not in FINISHED_STATUSES

    @property
    def status_class(self) -> str:
        """What the planner decides on: ``live`` or the terminal status (not live progress)."""
        return "live" if self.live else self.status


@dataclass(frozen=True)
class RemoteModel:
    id: str
    owned_by: str = ""
    created: int = 0
    shutdown_date: dt.date | None = None
    provider: str = DEFAULT_PROVIDER


# A repository's jobs, and the same jobs by (provider, fingerprint).
_ProjectJobs = tuple[tuple[Job, ...], dict[tuple[str, str | None], list[Job]]]


@dataclass(frozen=True)
class Actual:
    """What the account(s) hold. Each object carries the provider it was read from."""

    files: tuple[RemoteFile, ...] = ()
    jobs: tuple[Job, ...] = ()
    models: tuple[RemoteModel, ...] = ()
    deployments: tuple[Deployment, ...] = ()  # Azure's, where the provider manages them

    def deployment(self, provider: str, name: str) -> Deployment | None:
        return next((d for d in self.deployments if d.provider == provider and d.name == name),
                    None)

    def models_named(self, provider: str) -> Mapping[str, tuple[RemoteModel, ...]]:
        """``provider``'s /models listing by id: a lookup where a scan of the listing per
        declared model would be quadratic (every succeeded job lists a fine-tuned model)."""
        return self._models_by_provider.get(provider, {})

    @cached_property
    def _models_by_provider(self) -> dict[str, dict[str, tuple[RemoteModel, ...]]]:
        out: dict[str, dict[str, tuple[RemoteModel, ...]]] = {}
        for m in self.models:
            named = out.setdefault(m.provider, {})
            named[m.id] = (*named.get(m.id, ()), m)
        return out

    def project_jobs(self, repo: str) -> tuple[Job, ...]:
        """Jobs ftops created for this repository; all other jobs are never looked at."""
        return self._project(repo)[0]

    @cached_property
    def _by_repo(self) -> dict[str, _ProjectJobs]:
        """Repo -> (its jobs, those by (provider, fingerprint)), each made on first use: the
        planner asks once per model, and a scan of every job each time is quadratic (1,000
        models over 20,000 jobs: 20 million looks). Frozen fields, so it never goes stale."""
        return {}

    def _project(self, repo: str) -> _ProjectJobs:
        found = self._by_repo.get(repo)
        if found is None:
            jobs = tuple(j for j in self.jobs if "ftops_model" in j.metadata
                         and j.metadata.get("ftops_repo", "") == repo)
            by_fingerprint: dict[tuple[str, str | None], list[Job]] = {}
            for j in jobs:
                key = (j.provider, j.metadata.get("ftops_fingerprint"))
                by_fingerprint.setdefault(key, []).append(j)
            found = self._by_repo[repo] = (jobs, by_fingerprint)
        return found

    def current_job(self, repo: str, provider: str, fingerprint: str, *,
                    dead: Callable[[Job], bool] | None = None) -> Job | None:
        """The job of this project that stands for ``fingerprint``: the oldest one running or
        succeeded (the one apply keeps when there are duplicates, so a later failure of the
        same weights never hides a success), else the latest other non-cancelled one (failed,
        or succeeded but ``dead``: its fine-tuned model is gone)."""
        jobs = [j for j in self._project(repo)[1].get((provider, fingerprint), ())
                if j.status != "cancelled"]
        kept = [j for j in jobs
                if j.live or (j.status == "succeeded" and not (dead and dead(j)))]
        if kept:
            return min(kept, key=lambda j: (j.created_at, j.id))
        return max(jobs, key=lambda j: (j.created_at, j.id), default=None)
