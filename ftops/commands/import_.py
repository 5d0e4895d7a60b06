"""``ftops import``: adopt jobs ftops did not create. It downloads their files and writes spec
entries whose fingerprint is the job's, bound to the job by ``adopt:``, so the plan says ``ok``
at once, without retraining."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftops.changes import suffix_of
from ftops.commands import emulated
from ftops.errors import FtopsError, UsageError
from ftops.identity import RESERVED_PREFIX, fingerprints, model_fingerprint
from ftops.project import Project, load_project
from ftops.providers import Account
from ftops.spec import METHOD_HYPERPARAMETERS, Provider, dump_spec_yaml
from ftops.state import DEFAULT_PROVIDER, Job

_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ImportRun:
    spec_file: Path
    models: dict[str, str]  # model name -> adopted job id
    written: tuple[Path, ...]


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


@dataclass
class _Target:
    """Where an import writes, and what it has written so far (undone if it fails)."""

    root: Path  # the repository
    spec_dir: Path  # where the new spec file goes; dataset paths are relative to it
    data_dir: Path  # where the downloaded datasets go
    written: list[Path] = field(default_factory=list)
    datasets: dict[str, Any] = field(default_factory=dict)  # the spec's datasets section


def _adopt_entry(job: Job, remote: Account, target: _Target, *, name: str,
                 provider: str) -> dict[str, Any]:
    """Downloads the job's files and returns its models entry (and fills the datasets)."""
    fmt = "preference" if job.method == "dpo" else "chat"
    shas: dict[str, str] = {}
    for role, file_id in (("train", job.training_file), ("val", job.validation_file)):
        if file_id is None:
            continue
        path, shas[role] = _write_data(target.root, target.data_dir, f"{name}-{role}",
                                       remote.file_bytes(file_id), target.written)
        entry: dict[str, Any] = {
            "path": Path(os.path.relpath(path, target.spec_dir)).as_posix()}
        if fmt != "chat":
            entry["format"] = fmt
        target.datasets[f"{name}-{role}"] = entry
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


@dataclass(frozen=True)
class ImportOptions:
    job_ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # a model name per job, in order; none: from the suffix
    specs: Path = Path("specs")
    provider: str = DEFAULT_PROVIDER  # the providers entry the jobs live on
    out: Path | None = None  # default: imported.yaml in the spec directory
    emulator: bool = False


def run(options: ImportOptions) -> ImportRun:
    """Adopt each job into a new spec file (default ``<specs>/imported.yaml``), its datasets
    under ``data/imported/``; checks that the specs then plan each adopted model as its job."""
    ids, given = options.job_ids, options.names
    if not ids:
        raise UsageError("no job id given", hint="ftops import ftjob-...")
    if given and len(given) != len(ids):
        raise UsageError(f"{len(given)} --name for {len(ids)} job ids; give one per job or none")
    project = load_project(options.specs)
    chosen = next((p for p in project.spec.providers if p.name == options.provider), None)
    if chosen is None:
        raise FtopsError(f"no provider named '{options.provider}' in the specs")
    spec_file = _spec_file(options)
    out = _Target(project.root, spec_file.parent, project.root / "data" / "imported")
    try:
        models, adopted = _adopt_all(project, chosen, out, options)
        header = ("# Written by `ftops import`: jobs made outside ftops, adopted by id. The\n"
                  "# fingerprint pins the configuration they were trained with; changing it\n"
                  "# makes the plan replace the model with a new job.\n")
        spec_file.parent.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(dump_spec_yaml({"datasets": out.datasets, "models": models},
                                            header), encoding="utf-8")
        out.written.append(spec_file)
        _check_adopted(options.specs, models)
    except BaseException:
        for path in reversed(out.written):  # leave the repository as it was
            path.unlink(missing_ok=True)
        raise
    return ImportRun(spec_file, adopted, tuple(out.written))


def _spec_file(options: ImportOptions) -> Path:
    """The new spec file: a .yaml file inside the spec directory (so plan reads it) that does
    not exist yet (import never edits a spec)."""
    specs = options.specs
    if not specs.is_dir():
        raise FtopsError(f"{specs} is not a directory; import adds a file to a spec directory")
    target = options.out if options.out is not None else specs / "imported.yaml"
    if target.suffix not in (".yaml", ".yml") or not target.resolve().is_relative_to(
            specs.resolve()):
        raise FtopsError(f"{target} is not a .yaml file in the spec directory {specs}",
                         hint="choose such an --out, so plan reads it")
    if target.exists():
        raise FtopsError(f"{target} exists; import writes a new spec file", hint="pass --out")
    return target


def _adopt_all(project: Project, chosen: Provider, out: _Target,
               options: ImportOptions) -> tuple[dict[str, Any], dict[str, str]]:
    """Each job's models entry (name -> entry) and the job each name adopts."""
    taken = {m.name for m in project.spec.models} | {d.name for d in project.spec.datasets}
    repo = project.desired.repo
    models: dict[str, Any] = {}
    adopted: dict[str, str] = {}
    with emulated.connections(
            [chosen], [chosen.name],
            emulator_root=project.root if options.emulator else None) as conns:
        remote = conns[chosen.name].remote(repo)
        for index, job_id in enumerate(options.job_ids):
            job = remote.job(job_id)
            _adoptable(job, repo)
            wanted = options.names[index] if options.names else _suffix(job) or job.id
            name = _free_name(wanted, taken)
            taken |= {f"{name}-train", f"{name}-val"}
            models[name] = _adopt_entry(job, remote, out, name=name, provider=chosen.name)
            adopted[name] = job_id
    return models, adopted


def _check_adopted(specs: Path, models: dict[str, Any]) -> None:
    """The specs, read back, must give each adopted model its job's fingerprint."""
    project = load_project(specs)
    prints = fingerprints(project.desired)
    for name, entry in models.items():
        if prints.get(name) != entry["adopt"]["fingerprint"]:
            raise FtopsError(f"model {name}: the written spec does not reproduce the job's "
                             "fingerprint", hint="report this as an ftops bug")
