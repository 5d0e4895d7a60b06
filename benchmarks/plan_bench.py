"""Request count and wall time of `ftops plan` for 200 models with 2,000 existing ftops jobs.

Run: .venv/bin/python benchmarks/plan_bench.py [--models 200] [--jobs 2000] [--latency-ms 100]

Builds a temp git repo (one 10-line dataset per model), fills an in-process emulator on 127.0.0.1
(job_seconds=0, no latency while filling): uploads every dataset, creates ``jobs - models``
historic jobs carrying this repo's ftops metadata under older fingerprints (earlier versions of
the models), then applies the specs so each model has its current succeeded job. Then measures
the plan in process (project.load_project + session.make_plan) and end to end (the `ftops plan`
CLI in a subprocess pointed at the emulator with OPENAI_BASE_URL), with ``--latency-ms`` added to
every request. Target: O(pages) requests, at most ~30, and zero writes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
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
from ftops.identity import sha256_text
from ftops.plan import ActionType, Plan, Training
from ftops.project import Project, load_project
from ftops.providers import JOBS_PAGE, Remote


def fill(project: Project, remote: Remote, models: int, jobs: int) -> Plan:
    """Uploads, historic jobs, then an apply; returns the first plan (all `train`)."""
    first = session.make_plan(project, {"openai": remote})
    paths = {d.sha256: project.root / d.path for d in project.desired.datasets}
    with ThreadPoolExecutor(8) as pool:
        files = dict(pool.map(lambda sha: (sha, remote.upload(paths[sha], sha).id), paths))
        trains = [a.training for a in first.actions
                  if a.action is ActionType.TRAIN and a.training is not None]
        history = [(t, k) for k in range((jobs - models) // models + 1) for t in trains]

        def old_job(item: tuple[Training, int]) -> None:
            training, k = item
            meta = {**training.metadata, "ftops_fingerprint": sha256_text(f"{training}-{k}")}
            remote.create_job(model=training.base, training_file=files[training.training.sha256],
                              validation_file=None, method=training.method,
                              hyperparameters={}, suffix=None, seed=None, metadata=meta)

        list(pool.map(old_job, history[: jobs - models]))
    apply_plan(project, {"openai": remote}, first, saved=False,
               options=ApplyOptions(specs=project.root, parallel=8, report=lambda _line: None))
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2000, help="total ftops jobs of the repo")
    parser.add_argument("--latency-ms", type=float, default=100.0,
                        help="added to every request while measuring (not while filling)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.jobs < args.models:
        parser.error("--jobs must be at least --models (each model has its current job)")

    with tempfile.TemporaryDirectory(prefix="ftops-plan-bench-") as tmp, \
            Emulator(job_seconds=0) as emu:
        specs = build_repo(Path(tmp) / "repo", args.models)
        with stopwatch() as loaded:
            project = load_project(specs)
        remote = remotes_for(emu, project.desired.repo)["openai"]
        with stopwatch() as filled:
            first = fill(project, remote, args.models, args.jobs)
        account_jobs = len(remote.jobs())
        print(f"repo: {args.models} models, {len(project.desired.datasets)} datasets "
              f"(first load_project {loaded[0]:.2f}s, cold analysis cache)")
        print(f"filled in {filled[0]:.1f}s: {account_jobs} ftops jobs of {project.desired.repo}; "
              f"first plan: {first.summary['train']} train, {first.summary['upload']} upload")

        emu.latency = args.latency_ms / 1000  # a public knob of the running server
        rows, times = [], []
        for n in range(1, args.repeat + 1):
            since = len(emu.requests())
            with stopwatch() as load:
                project = load_project(specs)
            with stopwatch() as planned:
                plan = session.make_plan(project, remotes_for(emu, project.desired.repo))
            reads, writes = count_requests(emu, since)
            times.append(load[0] + planned[0])
            summary = {k: v for k, v in plan.summary.items() if v}
            rows.append([f"in-process #{n}", f"{load[0]:.2f}", f"{planned[0]:.2f}",
                         reads, writes, summary])
        for n in range(1, args.repeat + 1):
            since = len(emu.requests())
            took = run_cli(emu.base_url, "plan", "--specs", str(specs))
            reads, writes = count_requests(emu, since)
            rows.append([f"`ftops plan` CLI #{n}", "", f"{took:.2f} (total)", reads, writes, ""])
        # For comparison: an apply with nothing to do reads the same account several times.
        since = len(emu.requests())
        took = run_cli(emu.base_url, "apply", "--auto-approve", "--specs", str(specs))
        reads, writes = count_requests(emu, since)
        rows.append(["`ftops apply` CLI (no-op)", "", f"{took:.2f} (total)", reads, writes, ""])
        print(f"\nplan with --latency-ms {args.latency_ms:g} on every request:")
        print_table(["run", "load_project s", "read+plan s", "GETs", "writes", "actions"], rows)
        pages = -(-account_jobs // JOBS_PAGE)
        print(f"\nin-process median {statistics.median(times):.2f}s; "
              f"jobs page size {JOBS_PAGE}: {account_jobs} jobs = {pages} pages")
        print(machine_note())


if __name__ == "__main__":
    main()
