"""How ftops recognises its own things in an account: dataset file names, model fingerprints,
job metadata. No state file is needed because these identities are derived from content."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Final

from ftops.errors import SpecError
from ftops.state import Desired, HyperValue, RemoteFile, ResolvedModel, Source

FINE_TUNE_PURPOSE: Final = "fine-tune"
_FILENAME = re.compile(r"ftops-([0-9a-f]{64})\.jsonl")
REPO_TAG_CHARS: Final = 8
_TAGGED = re.compile(r"ftops-([0-9a-f]{8})-([0-9a-f]{64})\.jsonl")

# OpenAI's limits on a job's metadata.
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
RESERVED_PREFIX = "ftops_"


def canonical_json(value: object) -> str:
    """One spelling per value: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dataset_filename(sha256: str) -> str:
    """The name a dataset is uploaded under; the hash in it is what makes uploads idempotent."""
    return f"ftops-{sha256}.jsonl"


def repo_tag(repo: str) -> str:
    """A short stand-in for the repository (the first 8 hex of the sha256 of its ``ftops_repo``
    identity) that ftops writes into the names of what it creates where jobs keep no metadata
    (Nebius, Together, Fireworks, Azure), so that another repository's are told from its own."""
    return sha256_text(repo)[:REPO_TAG_CHARS]


def tagged_filename(sha256: str, tag: str) -> str:
    """A dataset's name where jobs keep no metadata: ``ftops-<repo tag>-<sha256>.jsonl``."""
    return f"ftops-{tag}-{sha256}.jsonl"


def scoped_filename(filename: str, tag: str, *, untagged: bool = False) -> str | None:
    """How a file listed where jobs keep no metadata is seen: one of this repository's datasets
    (its tag) as ``ftops-<sha256>.jsonl``, like anywhere else; another repository's dataset, or
    one named before names were tagged, as None (not this repository's: never reused, never
    pruned), unless ``untagged`` takes the latter as its own; any other file as it is."""
    found = _TAGGED.fullmatch(filename)
    if found:
        return dataset_filename(found.group(2)) if found.group(1) == tag else None
    if _FILENAME.fullmatch(filename):
        return filename if untagged else None
    return filename


def tagged_sha256(filename: str) -> tuple[str, str] | None:
    """(repo tag, sha256) of a tagged dataset name; None for any other name."""
    found = _TAGGED.fullmatch(filename)
    return (found.group(1), found.group(2)) if found else None


def sha256_from_filename(filename: str) -> str | None:
    """The dataset hash an ftops-named file carries, or None for any other file name."""
    match = _FILENAME.fullmatch(filename)
    return match.group(1) if match else None


def is_dataset_file(file: RemoteFile, sha256: str, size: int) -> bool:
    """A remote file IS the dataset when purpose, hash-carrying name and size all match."""
    return (
        file.purpose == FINE_TUNE_PURPOSE
        and file.filename == dataset_filename(sha256)
        and file.bytes == size
    )


def normalize_hyperparameters(values: Mapping[str, HyperValue]) -> dict[str, HyperValue]:
    """Drop ``auto`` (the same job as leaving the key out) and spell 2.0 as 2."""
    out: dict[str, HyperValue] = {}
    for key, value in values.items():
        if value == "auto":
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = value
    return out


def model_fingerprint(
    *,
    base: str | None,
    parent_fingerprint: str | None,
    training_sha256: str,
    validation_sha256: str | None,
    method: str,
    hyperparameters: Mapping[str, HyperValue],
    suffix: str | None,
    seed: int | None,
) -> str:
    """sha256 of everything that changes the trained weights (never labels or provenance).

    A chained model hashes its parent's fingerprint instead of a base id: the parent's model id
    does not exist until the parent trains, and a retrained parent must retrain the child.
    """
    payload = {
        "fingerprint_version": 1,
        "base": None if parent_fingerprint else base,
        "parent_fingerprint": parent_fingerprint,
        "training": training_sha256,
        "validation": validation_sha256,
        "method": method,
        "hyperparameters": normalize_hyperparameters(hyperparameters),
        "suffix": suffix,
        "seed": seed,
    }
    return sha256_text(canonical_json(payload))


def _error(model: ResolvedModel, message: str, hint: str | None = None) -> SpecError:
    source = model.source or Source(path="specs")
    return SpecError(f"model {model.name}: {message}", path=source.path, line=source.line,
                     hint=hint)


def fingerprints(desired: Desired) -> dict[str, str]:
    """The fingerprint of every declared model, parents before children."""
    models = {m.name: m for m in desired.models}
    hashes = {d.name: d.sha256 for d in desired.datasets}
    done: dict[str, str] = {}

    def visit(model: ResolvedModel, chain: tuple[str, ...]) -> str:
        if model.name in done:
            return done[model.name]
        if model.name in chain:
            cycle = " -> ".join((*chain[chain.index(model.name):], model.name))
            raise _error(model, f"chained models form a cycle: {cycle}",
                         "a model's base must not lead back to itself")
        parent_fp = None
        if model.parent is not None:
            parent = models.get(model.parent)
            if parent is None:
                raise _error(model, f"base model {model.parent!r} is not declared")
            parent_fp = visit(parent, (*chain, model.name))
        elif not model.base:
            raise _error(model, "no base model", "set `base:` to a model id or alias")
        for dataset in (model.training, model.validation):
            if dataset is not None and dataset not in hashes:
                raise _error(model, f"dataset {dataset!r} is not declared")
        done[model.name] = model_fingerprint(
            base=model.base,
            parent_fingerprint=parent_fp,
            training_sha256=hashes[model.training],
            validation_sha256=hashes[model.validation] if model.validation else None,
            method=model.method,
            hyperparameters=model.hyperparameters,
            suffix=model.suffix,
            seed=model.seed,
        )
        return done[model.name]

    for model in sorted(desired.models, key=lambda m: m.name):
        visit(model, ())
    return done


def job_metadata(
    model: ResolvedModel, *, fingerprint: str, repo: str, commit: str | None
) -> dict[str, str]:
    """The metadata a job is created with: ftops's keys (to find it again) plus the labels.

    Raises SpecError listing every violation of OpenAI's limits at once.
    """
    meta = {"ftops_model": model.name, "ftops_fingerprint": fingerprint}
    if repo:
        meta["ftops_repo"] = repo
    if commit:
        meta["ftops_commit"] = commit
    problems: list[str] = []
    reserved = sorted(k for k in model.metadata if k.startswith(RESERVED_PREFIX))
    if reserved:
        problems.append(f"label keys starting with {RESERVED_PREFIX!r} are reserved: "
                        + ", ".join(reserved))
    for key, value in sorted(model.metadata.items()):
        if not isinstance(value, str):
            problems.append(f"label {key!r} must be a string, got {type(value).__name__}")
    merged = {**model.metadata, **meta}
    if len(merged) > MAX_METADATA_KEYS:
        room = MAX_METADATA_KEYS - len(meta)
        problems.append(
            f"{len(model.metadata)} labels but at most {room} fit "
            f"(OpenAI allows {MAX_METADATA_KEYS} metadata keys, ftops uses {len(meta)})"
        )
    for key, value in sorted(merged.items()):
        if len(key) > MAX_METADATA_KEY_CHARS:
            problems.append(f"label key {key[:20]!r}... is {len(key)} characters "
                            f"(at most {MAX_METADATA_KEY_CHARS})")
        if isinstance(value, str) and len(value) > MAX_METADATA_VALUE_CHARS:
            problems.append(f"metadata {key!r} is {len(value)} characters "
                            f"(at most {MAX_METADATA_VALUE_CHARS})")
    if problems:
        raise _error(model, "job metadata: " + "; ".join(problems))
    return dict(sorted(merged.items()))
