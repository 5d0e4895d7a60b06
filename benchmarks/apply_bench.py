"""Wall time of applying 50 new models (50 uploads + 50 jobs) at --parallel 1 versus 4 and 8.

Run: .venv/bin/python benchmarks/apply_bench.py [--models 50] [--latency-ms 100] [--parallel 1,4,8]

Builds a temp git repo (one 10-line dataset per model). For each --parallel value, a fresh
in-process emulator on 127.0.0.1 with ``--latency-ms`` on every request serves:
1. in process, the steps `ftops apply --auto-approve` takes: load_project, the plan's read and
   the plan, the execution (the plan's read serves as its re-check; then the read after the
   creates, which the mend uses), the lock written from that read, each timed, with the
   requests the execution sent;
2. then, with another fresh emulator, the `ftops apply --auto-approve --parallel N` CLI in a
   subprocess (OPENAI_BASE_URL pointed at the emulator), timed end to end, with its requests
   by phase from the emulator's log.
Target: the default --parallel 4 at least 4x faster than --parallel 1. The CLI times also hold
what every run pays at any --parallel: starting Python and importing the SDK, loading the specs,
the reads of the plan and of the lock.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import (
    build_repo,
    count_requests,
    machine_note,
    print_table,
    remotes_for,
    run_cli,
    stopwatch,
)

from ftops.commands import session
from ftops.commands.apply import ApplyOptions, Execution, _apply
from ftops.emulator import Emulator
from ftops.project import load_project
from ftops.stop import RequestBudget


@dataclass(frozen=True)
class Run:
    plan_s: float
    apply_s: float
    lock_s: float
    total_s: float
    reads: int  # requests apply_plan sent
    writes: int
    uploaded: int
    started: int


def in_process(specs: Path, parallel: int, latency_ms: float) -> Run:
    """The steps of an auto-approved ``ftops apply``, each timed: the plan's read is the look
    before executing, and the lock is made from the read the mend made."""
    with Emulator(job_seconds=0, latency_ms=latency_ms) as emu:
        with stopwatch() as load:
            project = load_project(specs)
        remotes = remotes_for(emu, project.desired.repo)
        budget = RequestBudget(parallel)
        with stopwatch() as planned:
            shown = session.read_actual(remotes, budget)
            plan = session.plan_for(project, remotes, shown, prune=False,
                                    allow_delete_models=False, today=None)
        since = len(emu.requests())
        options = ApplyOptions(specs=specs, parallel=parallel, auto_approve=True,
                               report=lambda _line: None)
        with stopwatch() as applied:
            outcome, after = _apply(project, remotes, Execution(plan, False, budget, shown),
                                    options)
        reads, writes = count_requests(emu, since)
        with stopwatch() as locked:
            session.refresh_lock(project, remotes, plan,
                                 after if after is not None else session.read_actual(remotes))
    if outcome.failed or len(outcome.started) != len(project.desired.models):
        raise SystemExit(f"apply did not start every model: {outcome}")
    return Run(plan_s=planned[0], apply_s=applied[0], lock_s=locked[0],
               total_s=load[0] + planned[0] + applied[0] + locked[0], reads=reads,
               writes=writes, uploaded=len(outcome.uploaded), started=len(outcome.started))


@dataclass(frozen=True)
class CliRun:
    seconds: float
    before: int  # GETs before the first write: the plan's read (also the look before executing)
    during: tuple[int, int]  # (GETs, writes) from the first write to the last
    after: int  # GETs after the last write: the read the mend and the lock share


def phases(entries: list[dict[str, object]]) -> tuple[int, tuple[int, int], int]:
    """Requests of one apply by phase, from the emulator's log in the order they arrived."""
    writes = [n for n, e in enumerate(entries) if e["method"] != "GET"]
    if not writes:
        return len(entries), (0, 0), 0
    first, last = writes[0], writes[-1]
    return first, (last + 1 - first - len(writes), len(writes)), len(entries) - last - 1


def cli(specs: Path, parallel: int, latency_ms: float) -> CliRun:
    with Emulator(job_seconds=0, latency_ms=latency_ms) as emu:
        seconds = run_cli(emu.base_url, "apply", "--auto-approve", "--parallel", str(parallel),
                          "--specs", str(specs))
        before, during, after = phases(emu.requests())
    return CliRun(seconds, before, during, after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--parallel", default="1,4,8", help="comma-separated worker counts")
    args = parser.parse_args()
    workers = [int(p) for p in args.parallel.split(",")]

    with tempfile.TemporaryDirectory(prefix="ftops-apply-bench-") as tmp:
        specs = build_repo(Path(tmp) / "repo", args.models)
        load_project(specs)  # fills the analysis cache, as a prior `ftops plan` would
        runs = {p: in_process(specs, p, args.latency_ms) for p in workers}
        cli_times = {p: cli(specs, p, args.latency_ms) for p in workers}

    first, first_cli = runs[workers[0]], cli_times[workers[0]]
    print(f"apply of {args.models} new models, emulator latency {args.latency_ms:g} ms/request")
    print_table(
        ["parallel", "plan s", "apply_plan s", "GETs", "writes", "lock s", "total s",
         "uploaded", "started", f"apply vs p{workers[0]}", "CLI s", f"CLI vs p{workers[0]}"],
        [[p, f"{r.plan_s:.2f}", f"{r.apply_s:.2f}", r.reads, r.writes, f"{r.lock_s:.2f}",
          f"{r.total_s:.2f}", r.uploaded, r.started, f"{first.apply_s / r.apply_s:.2f}x",
          f"{cli_times[p].seconds:.2f}", f"{first_cli.seconds / cli_times[p].seconds:.2f}x"]
         for p, r in runs.items()])
    print("CLI requests by phase (emulator log order): GETs before the first write (the plan's "
          "read), GETs + writes up to the last write, GETs after it (the mend's and lock's read)")
    print_table(["parallel", "before", "during GETs", "writes", "after"],
                [[p, c.before, c.during[0], c.during[1], c.after] for p, c in cli_times.items()])
    if 1 in cli_times and 4 in cli_times:
        one, four = cli_times[1].seconds, cli_times[4].seconds
        print(f"CLI end to end: --parallel 4 {four:.2f} s, --parallel 1 {one:.2f} s: "
              f"{one / four:.2f}x ({'meets' if one >= 4 * four else 'misses'} the 4x target)")
    print(machine_note())


if __name__ == "__main__":
    main()
