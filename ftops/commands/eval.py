"""``ftops eval``: read the accounts for the trained model ids and run each model's eval;
promotes nothing (promotion belongs to ``apply --wait``) and leaves ``ftops.lock`` as it is.
Stopped by a signal (``ftops.stop``), it sends no further chat request: the ones in flight
return, and the replies of every model evaluated whole are cached for the next run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftops import evals, stop
from ftops.commands import session
from ftops.project import load_project


def _quiet(_line: str) -> None:
    """Progress lines are dropped unless a reporter is given."""


@dataclass(frozen=True)
class EvalOptions:
    names: tuple[str, ...] = ()
    specs: Path = Path("specs")
    emulator: bool = False
    parallel: int = 4
    report: Callable[[str], None] = _quiet


def run(options: EvalOptions) -> tuple[evals.EvalResult, ...]:
    project = load_project(options.specs)
    with session.connect(project, emulator=options.emulator) as remotes:
        locked = session.current_lock(project, remotes)
        try:
            # Not cooperating: the signal raises in this thread, where the examples' pool
            # cancels every request not yet sent and waits for the ones in flight.
            return evals.evaluate(project, remotes, locked, options.names,
                                  parallel=options.parallel, report=options.report)
        except stop.Interrupted as stopped:
            stopped.hint = ("ftops.lock is as it was; the replies of each model evaluated "
                            "whole are cached, so `ftops eval` goes on from there")
            raise
