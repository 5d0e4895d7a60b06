"""How the planner reads an existing job against the spec: the fields that changed (as the plan's
``Change``s), the user's labels, the suffix, and the error the plan shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import NotPresent

from ftops.errors import redact
from ftops.identity import RESERVED_PREFIX
from ftops.modelid import parse_fine_tuned
from ftops.plan import Change
from ftops.state import Job


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
