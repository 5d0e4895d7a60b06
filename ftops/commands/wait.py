"""``ftops wait``: follow the named models' current jobs (all by default) to their end,
printing the events no earlier wait printed (``.ftops/events.json``; ``--all``: every one),
then write ``ftops.lock``. Stopped by a signal (``ftops.stop``), it
ends the wait between polls, writes ``ftops.lock`` from one look and says how to go on."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ftops import stop
from ftops.commands import session
from ftops.errors import UsageError
from ftops.follow import Shown, follow
from ftops.identity import fingerprints
from ftops.project import Project, load_project
from ftops.providers import Account
from ftops.state import Job

SHOWN_FILE = Path(".ftops") / "events.json"  # the newest event printed of each job


@dataclass(frozen=True)
class WaitOptions:
    names: tuple[str, ...] = ()
    specs: Path = Path("specs")
    emulator: bool = False
    timeout: float | None = None
    report: Callable[[str], None] = print
    all_events: bool = False  # print each job's whole history, not only what is new


@dataclass(frozen=True)
class WaitRun:
    jobs: dict[str, Job]  # model name -> its job as it ended

    @property
    def ok(self) -> bool:
        return all(job.status == "succeeded" for job in self.jobs.values())


def run(options: WaitOptions) -> WaitRun:
    project = load_project(options.specs)
    shown = Shown(project.root / SHOWN_FILE, forget=options.all_events)
    with session.connect(project, emulator=options.emulator) as remotes:
        try:
            with stop.cooperating():  # a signal ends the wait between polls, not mid-request
                jobs = wait_for(project, remotes, options.names, timeout=options.timeout,
                                report=options.report, shown=shown)
        except stop.Interrupted as stopped:
            stop.settle(stopped, lambda: session.refresh_lock(project, remotes),
                        then="the jobs go on; `ftops wait` follows them again")
            raise
        finally:
            shown.save()
        session.refresh_lock(project, remotes)
    return WaitRun(jobs)


def jobs_to_follow(project: Project, remotes: Mapping[str, Account],
                   names: tuple[str, ...]) -> dict[str, Job]:
    """The current job of each named model (all declared models when none are named)."""
    unknown = sorted(set(names) - {m.name for m in project.desired.models})
    if unknown:
        raise UsageError("no such model: " + ", ".join(unknown))
    actual = session.read_actual(remotes)
    prints = fingerprints(project.desired)
    out: dict[str, Job] = {}
    for m in project.desired.models:
        if names and m.name not in names:
            continue
        job = actual.current_job(project.desired.repo, m.provider, prints[m.name])
        if job is not None:
            out[m.name] = job
    return out


def wait_for(project: Project, remotes: Mapping[str, Account], names: tuple[str, ...], *,
             timeout: float | None, report: Callable[[str], None] = print,
             shown: Shown | None = None) -> dict[str, Job]:
    """Follow each named model's current job to its end; returns the final jobs. Events
    ``shown`` records as printed before are not printed again."""
    deadline = None if timeout is None else time.monotonic() + timeout
    jobs = jobs_to_follow(project, remotes, names)
    if not jobs:
        report("no jobs to follow")
    return {
        name: follow(remotes[job.provider], name, job.id, report=report, deadline=deadline,
                     shown=shown)
        for name, job in sorted(jobs.items())
    }
