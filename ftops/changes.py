"""How the planner reads an existing job against the spec: the fields that changed (as the plan's
``Change``s), the user's labels, the suffix, and the error the plan shows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import NotPresent

from ftops.errors import redact
from ftops.identity import RESERVED_PREFIX, normalize_hyperparameters, sha256_from_filename
from ftops.modelid import parse_fine_tuned
from ftops.plan import Change
from ftops.state import Desired, Job, RemoteFile, ResolvedModel


def labels(metadata: Mapping[str, str]) -> dict[str, str]:
    """The user's labels: job metadata without the keys ftops reserves for itself."""
    return {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}


def suffix_of(fine_tuned_model: str | None) -> tuple[bool, str | None]:
    """(known, suffix) from ``ft:<base>:<org>:<suffix>:<id>``; jobs do not report the suffix.

    Azure's ids are not read: whether they carry the suffix verbatim is unverified, and a suffix
    misread would show as a change on every plan and retrain the model on every apply.
    """
    parsed = parse_fine_tuned(fine_tuned_model or "")
    if parsed is None or parsed.azure:
        return False, None
    return True, parsed.suffix


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    """Every leaf that differs, by dotted path; a side where the leaf is absent reads None."""
    tree = DeepDiff(dict(before), dict(after), view="tree")
    changes = []
    for items in tree.values():
        for item in items:
            path = ".".join(str(p) for p in item.path(output_format="list"))
            old = None if isinstance(item.t1, NotPresent) else item.t1
            new = None if isinstance(item.t2, NotPresent) else item.t2
            changes.append(Change(path=path, before=old, after=new))
    return tuple(sorted(changes, key=lambda c: c.path))


def job_error(job: Job) -> str:
    """A failed job's error as the plan shows it."""
    if job.error is None:
        return "failed without an error message"
    # API error messages are copied into plans and PR comments; never let a key ride along.
    return redact(f"{job.error.code}: {job.error.message}")


def job_changes(desired: Desired, files: Iterable[RemoteFile], model: ResolvedModel,
                fingerprint: str, previous: Job, base: str | None) -> tuple[Change, ...]:
    """Field-level diff between the previous job's config and the new one.

    Values the new spec leaves to the API (``auto``, no seed) and values the old job cannot
    tell (its suffix before it succeeds) are left out: they would be noise, not changes. A
    job's files read as the dataset hash their name carries (``files``: the account's), else
    as the bare file id.
    """
    names = {f.id: f.filename for f in files if f.provider == previous.provider}

    def file_hash(file_id: str) -> str:
        return sha256_from_filename(names.get(file_id, "")) or file_id

    validation = desired.dataset(model.validation) if model.validation else None
    training = desired.dataset(model.training)
    assert training is not None
    before: dict[str, Any] = {
        "base": previous.model,
        "training": file_hash(previous.training_file),
        "validation": file_hash(previous.validation_file) if previous.validation_file else None,
        "method": previous.method,
        "metadata": labels(previous.metadata),
    }
    after: dict[str, Any] = {
        "base": base or f"(model.{model.parent} once trained)",
        "training": training.sha256,
        "validation": validation.sha256 if validation else None,
        "method": model.method,
        "metadata": dict(model.metadata),
    }
    new_h = normalize_hyperparameters(model.hyperparameters)
    old_h = normalize_hyperparameters(previous.hyperparameters)
    before["hyperparameters"] = {k: old_h[k] for k in new_h if k in old_h}
    after["hyperparameters"] = new_h
    if model.seed is not None:
        before["seed"], after["seed"] = previous.seed, model.seed
    known, old_suffix = suffix_of(previous.fine_tuned_model)
    if known:
        before["suffix"], after["suffix"] = old_suffix, model.suffix
    changes = diff(before, after)
    if changes:
        return changes
    return (Change("fingerprint", previous.metadata.get("ftops_fingerprint"), fingerprint),)
