"""``ftops export``: one self-contained bundle per trained model, enough to train the same
model on another provider: the exact dataset files (named by hash), a spec that reproduces the
model's fingerprint, the job's resolved configuration and result metrics, and its lock entry."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ftops import lock
from ftops.commands import session
from ftops.commands.reports import results_csv
from ftops.errors import UsageError
from ftops.identity import fingerprints
from ftops.project import Project, load_project
from ftops.providers import Account
from ftops.spec import ResolvedModel, dump_spec_yaml
from ftops.state import Job

EXPORT_VERSION = 1
DEFAULT_EXPORT_DIR = "ftops-export"
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExportRun:
    bundles: dict[str, Path]  # model name -> bundle directory
    skipped: dict[str, str]  # model name -> why it has no bundle


def _chain(project: Project, model: ResolvedModel) -> list[ResolvedModel]:
    """The model and every declared model it trains on, parents first."""
    chain = [model]
    while chain[0].parent is not None:
        parent = project.spec.model(chain[0].parent)
        assert parent is not None  # the spec resolver checked every reference
        chain.insert(0, parent)
    return chain


def _model_entry(model: ResolvedModel, datasets: dict[str, str]) -> dict[str, Any]:
    """A models entry, as portable as the model allows: no provider, eval or promotion."""
    entry: dict[str, Any] = {"base": model.parent or model.base_model,
                             "training": datasets[model.training]}
    if model.validation:
        entry["validation"] = datasets[model.validation]
    if model.method != "supervised":
        entry["method"] = model.method
    if model.hyperparameters:
        entry["hyperparameters"] = dict(model.hyperparameters)
    if model.grader is not None:
        entry["grader"] = model.grader
    for key in ("suffix", "seed"):
        if getattr(model, key) is not None:
            entry[key] = getattr(model, key)
    if model.metadata:
        entry["metadata"] = dict(model.metadata)
    return entry


def _bundle_spec(project: Project, chain: list[ResolvedModel]) -> dict[str, Any]:
    names = {ds.name: ds for ds in project.desired.datasets}
    used = sorted({n for m in chain for n in (m.training, m.validation) if n})
    datasets: dict[str, Any] = {}
    for name in used:
        entry: dict[str, Any] = {"path": f"../datasets/{names[name].sha256}.jsonl"}
        if names[name].format != "chat":
            entry["format"] = names[name].format
        datasets[name] = entry
    return {"datasets": datasets,
            "models": {m.name: _model_entry(m, {n: n for n in used}) for m in chain}}


def _metrics(csv_text: str | None) -> dict[str, str] | None:
    """The last row of the results file: the job's final step metrics."""
    if not csv_text:
        return None
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    return dict(rows[-1]) if rows else None


def _write_bundle(project: Project, model: ResolvedModel, job: Job, fingerprint: str,
                  entry: lock.LockedModel, remote: Account, folder: Path) -> None:
    chain = _chain(project, model)
    hashes = {ds.name: ds for ds in project.desired.datasets}
    (folder / "datasets").mkdir(parents=True, exist_ok=True)
    (folder / "specs").mkdir(exist_ok=True)
    for name in sorted({n for m in chain for n in (m.training, m.validation) if n}):
        shutil.copyfile(project.root / hashes[name].path,
                        folder / "datasets" / f"{hashes[name].sha256}.jsonl")
    header = (f"# Exported by ftops from {project.desired.repo}: reproduces model {model.name}\n"
              f"# (fingerprint {fingerprint}).\n"
              "# Add `provider:` to train it elsewhere.\n")
    (folder / "specs" / f"{model.name}.yaml").write_text(
        dump_spec_yaml(_bundle_spec(project, chain), header), encoding="utf-8")
    csv_text = results_csv(remote, job.id)
    if csv_text is not None:
        (folder / "results.csv").write_text(csv_text, encoding="utf-8")
    training = hashes[model.training].sha256
    validation = hashes[model.validation].sha256 if model.validation else None
    record = {
        "export_version": EXPORT_VERSION,
        "model": model.name,
        "fingerprint": fingerprint,
        "provider": model.provider,
        "job": {
            "id": job.id, "status": job.status, "base": job.model, "method": job.method,
            "hyperparameters": dict(job.hyperparameters), "seed": job.seed,
            "suffix": model.suffix, "training_sha256": training,
            "validation_sha256": validation, "fine_tuned_model": job.fine_tuned_model,
            "trained_tokens": job.trained_tokens, "created_at": job.created_at,
        },
        "metrics": _metrics(csv_text),
    }
    (folder / "job.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")
    (folder / "lock.yaml").write_text(yaml.safe_dump({model.name: entry.to_dict()},
                                                     sort_keys=True), encoding="utf-8")


@dataclass(frozen=True)
class ExportOptions:
    names: tuple[str, ...] = ()  # models to export; all when empty
    specs: Path = Path("specs")
    out: Path | None = None  # default: ftops-export/ at the repository root
    emulator: bool = False


def run(options: ExportOptions) -> ExportRun:
    """A bundle under ``out`` for each named model (all by default) whose current fingerprint
    has a succeeded job; the others are listed with the reason."""
    project = load_project(options.specs)
    wanted, out = options.names, options.out
    unknown = sorted(set(wanted) - {m.name for m in project.spec.models})
    if unknown:
        raise UsageError("no such model: " + ", ".join(unknown))
    target = out if out is not None else project.root / DEFAULT_EXPORT_DIR
    prints = fingerprints(project.desired)
    bundles: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    with session.connect(project, emulator=options.emulator) as remotes:
        actual = session.read_actual(remotes)
        entries = lock.update_lock(lock.Lock(), project.desired, actual).models
        for model in project.spec.models:
            if wanted and model.name not in wanted:
                continue
            job = actual.current_job(project.desired.repo, model.provider, prints[model.name])
            if job is None or job.status != "succeeded":
                state = job.status if job else "no job"
                skipped[model.name] = f"its current fingerprint has no succeeded job ({state})"
                continue
            folder = target / model.name
            _write_bundle(project, model, job, prints[model.name], entries[model.name],
                          remotes[model.provider], folder)
            bundles[model.name] = folder
    return ExportRun(bundles, skipped)


