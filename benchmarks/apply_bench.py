"""Wall time of applying 50 new models (50 uploads + 50 jobs) at --parallel 1 versus 4 and 8.

Run: .venv/bin/python benchmarks/apply_bench.py [--models 50] [--latency-ms 100] [--parallel 1,4,8]

Builds a temp git repo (one 10-line dataset per model). For each --parallel value, a fresh
in-process emulator on 127.0.0.1 with ``--latency-ms`` on every request serves:
1. in process, the calls `ftops apply --auto-approve` makes: load_project, session.make_plan,
   apply_plan, refresh_lock, each timed, with the requests they sent;
2. then, with another fresh emulator, the `ftops apply --auto-approve --parallel N` CLI in a
   subprocess (OPENAI_BASE_URL pointed at the emulator), timed end to end.
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
from ftops.commands.apply import ApplyOptions, apply_plan
from ftops.emulator import Emulator
from ftops.project import load_project


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
    with Emulator(job_seconds=0, latency_ms=latency_ms) as emu:
        with stopwatch() as load:
            project = load_project(specs)
        remotes = remotes_for(emu, project.desired.repo)
        with stopwatch() as planned:
            plan = session.make_plan(project, remotes)
        since = len(emu.requests())
        with stopwatch() as applied:
            outcome = apply_plan(project, remotes, plan, saved=False, options=ApplyOptions(
                specs=specs, parallel=parallel, report=lambda _line: None))
        reads, writes = count_requests(emu, since)
        with stopwatch() as locked:
            session.refresh_lock(project, remotes)
    if outcome.failed or len(outcome.started) != len(project.desired.models):
        raise SystemExit(f"apply did not start every model: {outcome}")
    return Run(plan_s=planned[0], apply_s=applied[0], lock_s=locked[0],
               total_s=load[0] + planned[0] + applied[0] + locked[0], reads=reads,
               writes=writes, uploaded=len(outcome.uploaded), started=len(outcome.started))


def cli(specs: Path, parallel: int, latency_ms: float) -> float:
    with Emulator(job_seconds=0, latency_ms=latency_ms) as emu:
        return run_cli(emu.base_url, "apply", "--auto-approve", "--parallel", str(parallel),
                       "--specs", str(specs))


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
          f"{cli_times[p]:.2f}", f"{first_cli / cli_times[p]:.2f}x"] for p, r in runs.items()])
    print(machine_note())


if __name__ == "__main__":
    main()
