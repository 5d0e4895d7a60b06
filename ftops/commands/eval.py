"""``ftops eval``: read the accounts for the trained model ids and run each model's eval;
promotes nothing (promotion belongs to ``apply --wait``) and leaves ``ftops.lock`` as it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftops import evals
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
        return evals.evaluate(project, remotes, locked, options.names,
                              parallel=options.parallel, report=options.report)
