"""A project: specs resolved against their repository, every dataset analysed. Loading one
stops at the first spec or dataset error, before any request is made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ftops import cost, datasets, gitinfo
from ftops.errors import DataError, FtopsError
from ftops.spec import ResolvedModel, Spec, load_specs
from ftops.state import Desired, DesiredDataset, Source

LOCK_FILE = "ftops.lock"
# How check_clean names a file that is not committed, beyond "modified" (said by no word).
_STATE_WORDS = {"untracked": "untracked", "ignored": "ignored by git"}


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


def _costed(model: ResolvedModel, report: datasets.DatasetReport) -> ResolvedModel:
    """The model with its estimated cost and what the estimate stands on (epochs, billable
    tokens), so that the plan words a budget error exactly as validate does."""
    epochs = cost.training_epochs(model.n_epochs, report.examples)
    billed = cost.billed_tokens(report.billable_tokens, epochs)
    return replace(model, estimated_cost_usd=cost.estimate_cost_usd(
        billed, model.training_usd_per_1m), cost_basis=(epochs, report.billable_tokens))


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
            raise DataError(
                f"dataset {ds.name} has {report.error_count} error(s), first: "
                f"{first.code}: {first.message}", path=ds.display, line=first.line or None,
                hint="run `ftops validate` for the full report")
        return report

    reports = {ds.name: analyze(ds.name) for ds in spec.datasets}
    # Only providers the catalog has facts on get a type; a custom endpoint gets no cut-off dates.
    provider_types = {p.name: None if p.base_url else p.type for p in spec.providers}
    # The resolved entries themselves, with what only analysis can add: no copy field by field.
    models = tuple(
        _costed(replace(m, provider_type=provider_types.get(m.provider, "openai")),
                analyze(m.training, m.encoding, m.example_token_limit))
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


def check_clean(project: Project) -> None:
    """Git is the source of truth: refuse to apply specs or data that are not committed, which
    includes a dataset git does not track at all (new, or ignored by a .gitignore): a job
    trained on it could never be traced to a commit."""
    paths = [*project.spec.files, *(d.path for d in project.desired.datasets)]
    states = gitinfo.file_states(project.root, [project.root / p for p in paths])
    if states:
        named = [path if state == "modified" else f"{path} ({_STATE_WORDS[state]})"
                 for path, state in sorted(states.items())]
        ignored = "ignored" in states.values()
        raise FtopsError(
            "uncommitted changes in " + ", ".join(named),
            hint="commit them first" + (" (`git add -f` adds an ignored file)" if ignored else "")
                 + ", or pass --allow-dirty")
