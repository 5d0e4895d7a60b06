"""``ftops export`` and ``ftops import``, callable without the CLI.

Export writes one self-contained bundle per trained model, enough to train the same model on
another provider: the exact dataset files (named by hash), a spec that reproduces the model's
fingerprint, the job's resolved configuration and result metrics, and its lock entry.
Import adopts jobs ftops did not create: it downloads their files and writes spec entries whose
fingerprint is the job's, bound to the job by ``adopt:``, so the plan says ``ok`` at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ftops import emulated, engine, lock
from ftops.actions import results_csv
from ftops.changes import suffix_of
from ftops.errors import FtopsError
from ftops.identity import RESERVED_PREFIX, fingerprints, model_fingerprint
from ftops.providers import Remote
from ftops.spec import METHOD_HYPERPARAMETERS, ResolvedModel
from ftops.state import DEFAULT_PROVIDER, Job

EXPORT_VERSION = 1
DEFAULT_EXPORT_DIR = "ftops-export"
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExportRun:
    bundles: dict[str, Path]  # model name -> bundle directory
    skipped: dict[str, str]  # model name -> why it has no bundle


@dataclass(frozen=True)
class ImportRun:
    spec_file: Path
    models: dict[str, str]  # model name -> adopted job id
    written: tuple[Path, ...]


def _dump_yaml(data: dict[str, Any], header: str) -> str:
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# --- export -------------------------------------------------------------------------------------


def _chain(project: engine.Project, model: ResolvedModel) -> list[ResolvedModel]:
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


def _bundle_spec(project: engine.Project, chain: list[ResolvedModel]) -> dict[str, Any]:
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


def _write_bundle(project: engine.Project, model: ResolvedModel, job: Job, fingerprint: str,
                  entry: lock.LockedModel, remote: Remote, folder: Path) -> None:
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
        _dump_yaml(_bundle_spec(project, chain), header), encoding="utf-8")
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


def export_models(specs: Path, *, out: Path | None = None, names: Iterable[str] = (),
                  emulator: bool = False) -> ExportRun:
    """A bundle under ``out`` for each named model (all by default) whose current fingerprint
    has a succeeded job; the others are listed with the reason."""
    project = engine.load_project(specs)
    wanted = tuple(names)
    unknown = sorted(set(wanted) - {m.name for m in project.spec.models})
    if unknown:
        raise FtopsError("no such model: " + ", ".join(unknown))
    target = out if out is not None else project.root / DEFAULT_EXPORT_DIR
    prints = fingerprints(project.desired)
    bundles: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    with engine.connect(project, emulator=emulator) as remotes:
        actual = engine.read_actual(remotes)
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


# --- import -------------------------------------------------------------------------------------


def _suffix(job: Job) -> str | None:
    """The suffix a fine-tuned model id carries (``ft:base:org:suffix:id``); None when unknown.
    Read as the planner reads it, so an imported model plans no suffix change."""
    return suffix_of(job.fine_tuned_model)[1]


def _free_name(wanted: str, taken: set[str]) -> str:
    base = _NAME.sub("-", wanted).strip("-._")[:56] or "imported"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _adoptable(job: Job, repo: str) -> None:
    if job.metadata.get("ftops_repo") == repo:
        raise FtopsError(f"job {job.id} is already managed by ftops (model "
                         f"{job.metadata.get('ftops_model')}); nothing to import")
    if job.status in ("failed", "cancelled"):
        raise FtopsError(f"job {job.id} {job.status}; only a live or succeeded job can be adopted")
    if job.method not in ("supervised", "dpo"):
        raise FtopsError(f"job {job.id} uses method {job.method}; import supports supervised and "
                         "dpo jobs", hint="declare it by hand")


def _write_data(root: Path, folder: Path, stem: str, content: bytes,
                written: list[Path]) -> tuple[Path, str]:
    path = folder / f"{stem}.jsonl"
    if path.exists() and path.read_bytes() != content:
        raise FtopsError(f"{path.relative_to(root)} exists with other content",
                         hint="move it away or import under another --name")
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return path, hashlib.sha256(content).hexdigest()


def _adopt_entry(job: Job, remote: Remote, *, name: str, provider: str, root: Path,
                 spec_dir: Path, data_dir: Path, written: list[Path],
                 datasets: dict[str, Any]) -> dict[str, Any]:
    """Downloads the job's files and returns its models entry (and fills ``datasets``)."""
    fmt = "preference" if job.method == "dpo" else "chat"
    shas: dict[str, str] = {}
    for role, file_id in (("train", job.training_file), ("val", job.validation_file)):
        if file_id is None:
            continue
        path, shas[role] = _write_data(root, data_dir, f"{name}-{role}",
                                       remote.file_bytes(file_id), written)
        entry: dict[str, Any] = {"path": Path(os.path.relpath(path, spec_dir)).as_posix()}
        if fmt != "chat":
            entry["format"] = fmt
        datasets[f"{name}-{role}"] = entry
    allowed = METHOD_HYPERPARAMETERS[job.method]
    hyper = {k: v for k, v in sorted(job.hyperparameters.items()) if k in allowed}
    suffix = _suffix(job)
    fingerprint = model_fingerprint(
        base=job.model, parent_fingerprint=None, training_sha256=shas["train"],
        validation_sha256=shas.get("val"), method=job.method, hyperparameters=hyper,
        suffix=suffix, seed=job.seed)
    model: dict[str, Any] = {"base": job.model, "training": f"{name}-train"}
    if "val" in shas:
        model["validation"] = f"{name}-val"
    if job.method != "supervised":
        model["method"] = job.method
    if hyper:
        model["hyperparameters"] = hyper
    if suffix:
        model["suffix"] = suffix
    if job.seed is not None:
        model["seed"] = job.seed
    labels = {k: v for k, v in sorted(job.metadata.items()) if not k.startswith(RESERVED_PREFIX)}
    if labels:
        model["metadata"] = labels
    if provider != DEFAULT_PROVIDER:
        model["provider"] = provider
    model["adopt"] = {"job": job.id, "fingerprint": fingerprint}
    return model


def import_jobs(specs: Path, job_ids: Iterable[str], *, names: Iterable[str] = (),
                provider: str = DEFAULT_PROVIDER, out: Path | None = None,
                emulator: bool = False) -> ImportRun:
    """Adopt each job into a new spec file (default ``<specs>/imported.yaml``), its datasets
    under ``data/imported/``; checks that the specs then plan each adopted model as its job."""
    ids, given = tuple(job_ids), tuple(names)
    if not ids:
        raise FtopsError("no job id given", hint="ftops import ftjob-...")
    if given and len(given) != len(ids):
        raise FtopsError(f"{len(given)} --name for {len(ids)} job ids; give one per job or none")
    project = engine.load_project(specs)
    chosen = next((p for p in project.spec.providers if p.name == provider), None)
    if chosen is None:
        raise FtopsError(f"no provider named '{provider}' in the specs")
    if not specs.is_dir():
        raise FtopsError(f"{specs} is not a directory; import adds a file to a spec directory")
    target = out if out is not None else specs / "imported.yaml"
    if target.suffix not in (".yaml", ".yml") or not target.resolve().is_relative_to(
            specs.resolve()):
        raise FtopsError(f"{target} is not a .yaml file in the spec directory {specs}",
                         hint="choose such an --out, so plan reads it")
    if target.exists():
        raise FtopsError(f"{target} exists; import writes a new spec file", hint="pass --out")
    taken = {m.name for m in project.spec.models} | {d.name for d in project.spec.datasets}
    repo = project.desired.repo
    written: list[Path] = []
    datasets: dict[str, Any] = {}
    models: dict[str, Any] = {}
    adopted: dict[str, str] = {}
    try:
        with emulated.connections(
                [chosen], [provider],
                emulator_root=project.root if emulator else None) as conns:
            remote = conns[provider].remote(repo)
            for index, job_id in enumerate(ids):
                job = remote.job(job_id)
                _adoptable(job, repo)
                name = _free_name(given[index] if given else _suffix(job) or job.id, taken)
                taken |= {f"{name}-train", f"{name}-val"}
                models[name] = _adopt_entry(
                    job, remote, name=name, provider=provider, root=project.root,
                    spec_dir=target.parent, data_dir=project.root / "data" / "imported",
                    written=written, datasets=datasets)
                adopted[name] = job_id
        header = ("# Written by `ftops import`: jobs made outside ftops, adopted by id. The\n"
                  "# fingerprint pins the configuration they were trained with; changing it\n"
                  "# makes the plan replace the model with a new job.\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_dump_yaml({"datasets": datasets, "models": models}, header),
                          encoding="utf-8")
        written.append(target)
        _check_adopted(specs, models)
    except BaseException:
        for path in reversed(written):  # leave the repository as it was
            path.unlink(missing_ok=True)
        raise
    return ImportRun(target, adopted, tuple(written))


def _check_adopted(specs: Path, models: dict[str, Any]) -> None:
    """The specs, read back, must give each adopted model its job's fingerprint."""
    project = engine.load_project(specs)
    prints = fingerprints(project.desired)
    for name, entry in models.items():
        if prints.get(name) != entry["adopt"]["fingerprint"]:
            raise FtopsError(f"model {name}: the written spec does not reproduce the job's "
                             "fingerprint", hint="report this as an ftops bug")
