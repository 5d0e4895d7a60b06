"""``ftops import``: adopt jobs ftops did not create. It downloads their files and writes spec
entries whose fingerprint is the job's, bound to the job by ``adopt:``, so the plan says ``ok``
at once, without retraining."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftops import emulated
from ftops.changes import suffix_of
from ftops.errors import FtopsError
from ftops.identity import RESERVED_PREFIX, fingerprints, model_fingerprint
from ftops.project import load_project
from ftops.providers import Remote
from ftops.spec import METHOD_HYPERPARAMETERS, dump_spec_yaml
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
    specs, provider, out, emulator = (options.specs, options.provider, options.out,
                                      options.emulator)
    ids, given = options.job_ids, options.names
    if not ids:
        raise FtopsError("no job id given", hint="ftops import ftjob-...")
    if given and len(given) != len(ids):
        raise FtopsError(f"{len(given)} --name for {len(ids)} job ids; give one per job or none")
    project = load_project(specs)
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
        target.write_text(dump_spec_yaml({"datasets": datasets, "models": models}, header),
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
    project = load_project(specs)
    prints = fingerprints(project.desired)
    for name, entry in models.items():
        if prints.get(name) != entry["adopt"]["fingerprint"]:
            raise FtopsError(f"model {name}: the written spec does not reproduce the job's "
                             "fingerprint", hint="report this as an ftops bug")
