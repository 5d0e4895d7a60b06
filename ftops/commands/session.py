"""What every command that talks to providers shares: connect to each provider the specs use
(or to an embedded emulator each), read the accounts, plan against them, and the lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

from ftops import clock, identity, lock, planner, providers, recognise
from ftops.commands import emulated
from ftops.errors import FtopsError
from ftops.plan import Plan
from ftops.project import LOCK_FILE, Project
from ftops.providers import Account
from ftops.state import DEFAULT_PROVIDER, Actual
from ftops.stop import RequestBudget


@contextmanager
def connect(project: Project, *, emulator: bool = False, max_retries: int = 2,
            job_seconds: float | None = None) -> Iterator[dict[str, Account]]:
    """One Account per provider the specs use, each with its own client (``ftops.providers``);
    with ``emulator``, each on its own embedded emulator (jobs taking ``job_seconds``, None:
    ``FTOPS_EMULATOR_JOB_SECONDS`` else 3 s, see ``emulated.default_job_seconds``)."""
    names = {m.provider for m in project.desired.models} or {DEFAULT_PROVIDER}
    repo = project.desired.repo
    try:
        prints = identity.fingerprints(project.desired)
    except FtopsError:  # a cycle or a dangling reference: the plan reports it
        prints = {}
    with emulated.connections(project.spec.providers, names,
                               emulator_root=project.root if emulator else None,
                               job_seconds=job_seconds, max_retries=max_retries) as conns:
        yield {name: c.remote(repo, adopted=providers.adoptions(project.spec.models, repo=repo,
                                                                 provider=name),
                              expected=recognise.expectations(project.desired, prints, name))
               for name, c in conns.items()}


def read_actual(remotes: Mapping[str, Account], budget: RequestBudget | None = None) -> Actual:
    """Every account's state; within an apply, its requests hold slots of the run's budget."""
    return merged([remote.read(budget) for remote in remotes.values()])


def merged(parts: Iterable[Actual]) -> Actual:
    """One ``Actual`` of several accounts' (each object names its provider)."""
    each = list(parts)
    return Actual(files=tuple(f for a in each for f in a.files),
                  jobs=tuple(j for a in each for j in a.jobs),
                  models=tuple(m for a in each for m in a.models),
                  deployments=tuple(d for a in each for d in a.deployments))


def make_plan(project: Project, remotes: Mapping[str, Account], *, prune: bool = False,
              allow_delete_models: bool = False, today: dt.date | None = None) -> Plan:
    return plan_for(project, remotes, read_actual(remotes), prune=prune,
                 allow_delete_models=allow_delete_models, today=today)


def plan_for(project: Project, remotes: Mapping[str, Account], actual: Actual, *, prune: bool,
          allow_delete_models: bool, today: dt.date | None) -> Plan:
    """The planner on what was read, as of ``today`` (else the one clock), with each model
    held to the dates of the endpoint it really talks to (see ``Account.calendar``)."""
    calendars = {name: remote.calendar() for name, remote in remotes.items()}
    desired = replace(project.desired, models=tuple(
        replace(m, provider_type=calendars.get(m.provider, m.provider_type))
        for m in project.desired.models))
    aliases = lock.read_lock(project.root / LOCK_FILE).alias_models()
    return planner.plan(desired, actual, prune=prune, allow_delete_models=allow_delete_models,
                        today=today or clock.today(), pinned=today is None and bool(clock.pinned()),
                        aliases=aliases)


def current_lock(project: Project, remotes: Mapping[str, Account],
                 plan: Plan | None = None, actual: Actual | None = None) -> lock.Lock:
    """``ftops.lock`` as the account says it is now (``actual``, else read now), not written.
    Models the plan (``plan``, else one made from this same read) finds retired are marked
    with the day."""
    current = lock.read_lock(project.root / LOCK_FILE)
    actual = read_actual(remotes) if actual is None else actual
    if plan is None:
        plan = plan_for(project, remotes, actual, prune=False, allow_delete_models=False,
                        today=None)
    retired = {a.name: a.display.retired_on for a in plan.actions
               if a.kind.value == "model" and a.display.retired_on}
    return lock.update_lock(current, project.desired, actual, retired=retired)


def refresh_lock(project: Project, remotes: Mapping[str, Account],
                 plan: Plan | None = None, actual: Actual | None = None) -> lock.Lock:
    """Write ``ftops.lock`` at the repository root, from ``actual`` or a read made now."""
    updated = current_lock(project, remotes, plan, actual)
    lock.write_lock(project.root / LOCK_FILE, updated)
    return updated
