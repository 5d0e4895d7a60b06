"""Mending: keep one of each dataset file and one job per fingerprint, removing the duplicates
that a retry, a crash or a concurrent apply left behind (the oldest is kept, so two applies
mending at once agree on what stays), and what an apply did (``Outcome``)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from ftops import drift
from ftops.identity import dataset_filename, sha256_from_filename
from ftops.providers import Account
from ftops.providers.messages import already_gone
from ftops.state import Actual, Job, RemoteFile
from ftops.stop import RequestBudget


@dataclass
class Outcome:
    """What one apply did; ``deferred`` is left for the next apply, ``failed`` is an error."""

    uploaded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    started: dict[str, str] = field(default_factory=dict)  # model -> job id
    deduplicated: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    deferred: dict[str, str] = field(default_factory=dict)  # model -> reason
    failed: dict[str, str] = field(default_factory=dict)  # model -> error
    deployed: list[str] = field(default_factory=list)  # Azure deployments made or updated

    @property
    def ok(self) -> bool:
        return not self.failed


_Listed = TypeVar("_Listed", RemoteFile, Job)


def oldest_first(items: list[_Listed]) -> list[_Listed]:
    return sorted(items, key=lambda x: (x.created_at, x.id))


def dedupe_files(remote: Account, files: tuple[RemoteFile, ...], sha256: str, size: int,
                 outcome: Outcome, budget: RequestBudget | None = None) -> RemoteFile | None:
    """Keep the oldest file carrying this dataset; delete the rest. Returns the kept one."""
    name = dataset_filename(sha256)
    same = oldest_first([f for f in files if f.filename == name and f.bytes == size])
    for extra in (f for f in same[1:] if not f.shared):  # another repository's stays
        ignore_missing(partial(remote.delete_file, extra.id), budget)
        outcome.deduplicated.append(f"file {extra.id} (duplicate of {same[0].id})")
    return same[0] if same else None


def dedupe_jobs(remote: Account, jobs: tuple[Job, ...], fingerprint: str,
                outcome: Outcome, budget: RequestBudget | None = None) -> Job | None:
    """Keep the oldest live-or-succeeded job of a fingerprint; cancel every other live one."""
    mine = [j for j in jobs if j.metadata.get("ftops_fingerprint") == fingerprint]
    keepers = oldest_first([j for j in mine if j.live or j.status == "succeeded"])
    if not keepers:
        return None
    for extra in keepers[1:]:
        if extra.live:
            ignore_missing(partial(remote.cancel_job, extra.id), budget)
            outcome.deduplicated.append(f"job {extra.id} (duplicate of {keepers[0].id})")
    return keepers[0]


def ignore_missing(call: Callable[[], object], budget: RequestBudget | None = None) -> None:
    """Deleting or cancelling what another apply already removed is success, not an error."""
    with contextlib.suppress(*already_gone()):
        budget.call(call) if budget else call()


def mend_duplicates(remotes: Mapping[str, Account], actual: Actual, outcome: Outcome,
                    budget: RequestBudget | None = None) -> None:
    """Remove duplicates an earlier crash or race left behind (no requests when there are none)."""
    for provider, remote in remotes.items():
        files = tuple(f for f in actual.files if f.provider == provider)
        counts = Counter((f.filename, f.bytes) for f in files)
        for (filename, size), count in counts.items():
            sha = sha256_from_filename(filename)
            if count > 1 and sha is not None:
                dedupe_files(remote, files, sha, size, outcome, budget)
        calendar = remote.calendar()  # a job whose model was deleted is no duplicate to keep
        jobs = tuple(j for j in actual.jobs if j.provider == provider
                     and not drift.model_deleted(actual, j, calendar))
        kept = Counter(j.metadata.get("ftops_fingerprint") for j in jobs
                       if j.live or j.status == "succeeded")
        for fingerprint, count in kept.items():
            if count > 1 and fingerprint is not None:
                dedupe_jobs(remote, jobs, fingerprint, outcome, budget)
