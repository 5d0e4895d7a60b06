"""Requests, wall time and peak memory of `ftops plan` as the account grows, on two providers.

Run: .venv/bin/python benchmarks/plan_bench.py [--cases 200x2000,1000x20000] [--latency-ms 0]
     [--repeat 3]

Each case ``MxJ`` is a temp git repo of M models (one 10-line dataset each), every other model on
a second provider ``azure`` (type azure), on an account holding J jobs of the repository: per
model one current succeeded job and J/M - 1 older ones of earlier versions (other fingerprints),
each with its fine-tuned model listed. Two emulators serve it, one of each dialect (openai,
azure), on 127.0.0.1.

Seeding is not measured and makes no request: the planner, on an empty account, says which jobs
the specs want (their exact ftops metadata); the emulators' state files are then written
directly, every record a copy of the one a real upload and create left in a scratch emulator.

Measured, with ``--latency-ms`` on every request:
1. in process: load_project, session.connect, read_actual (the reads) and plan_for (the planner),
   each timed; the emulators' own counters give the requests per provider, set against what one
   request per job, model and file would take;
2. the `ftops plan` CLI in a child process, end to end, which reports its peak resident set.
Goal: requests O(pages) per provider, zero writes; plan time at most linear in the jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
from _common import (
    BASE_MODEL,
    BENCH_KEY,
    ORIGIN,
    chat_jsonl,
    machine_note,
    print_table,
    sdk_client,
    stopwatch,
)

from ftops import clock, planner
from ftops.commands import session
from ftops.emulator import Emulator
from ftops.identity import sha256_text
from ftops.plan import ActionType, Training
from ftops.project import Project, load_project
from ftops.providers import FILES_PAGE, JOBS_PAGE
from ftops.state import Actual

AZURE = "azure"
PROVIDERS = ("openai", AZURE)  # the implicit default provider, and a declared azure one
AZURE_KEY_ENV = "FTOPS_BENCH_AZURE_KEY"
FTOPS = Path(sys.executable).with_name("ftops")
# Runs the CLI as `ftops` would, then tells the process's peak resident set on stderr.
MEASURED = """
import re, sys
from ftops.cli import main
try:
    main(sys.argv[1:], prog_name="ftops")
finally:
    status = open("/proc/self/status").read()
    peak = re.search(r"VmHWM:\\s+(\\d+) kB", status)
    print(f"VmHWM {peak.group(1) if peak else 0}", file=sys.stderr)
"""


@dataclass(frozen=True)
class Case:
    models: int
    jobs: int

    @property
    def label(self) -> str:
        return f"{self.models:,} models / {self.jobs:,} jobs"


def free_port() -> int:
    """A loopback port free now; the azure entry's endpoint names it before its emulator runs."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def provider_of(index: int) -> str:
    return PROVIDERS[index % len(PROVIDERS)]


def build_repo(root: Path, models: int, azure_port: int) -> Path:
    """A committed repo: dataset i and model i, odd models on the azure provider."""
    specs, data = root / "specs", root / "data"
    specs.mkdir(parents=True)
    data.mkdir()
    out = ["providers:",
           f"  {AZURE}: {{type: azure, endpoint: 'http://127.0.0.1:{azure_port}',"
           f" api_version: 2025-04-01-preview, api_key_env: {AZURE_KEY_ENV}}}",
           "datasets:"]
    for i in range(models):
        (data / f"ds-{i:04d}.jsonl").write_bytes(chat_jsonl(10, f"ds-{i}"))
        out.append(f"  ds-{i:04d}: {{path: ../data/ds-{i:04d}.jsonl}}")
    out.append("models:")
    for i in range(models):
        where = "" if provider_of(i) == "openai" else f", provider: {AZURE}"
        out.append(f"  m-{i:04d}: {{base: {BASE_MODEL}, training: ds-{i:04d}{where}}}")
    (specs / "models.yaml").write_text("\n".join(out) + "\n", encoding="utf-8")
    (root / ".gitignore").write_text(".ftops/\nstate/\n", encoding="utf-8")
    with git.Repo.init(root) as repo:
        with repo.config_writer() as config:
            config.set_value("user", "name", "bench")
            config.set_value("user", "email", "bench@example.invalid")
        repo.create_remote("origin", ORIGIN)
        repo.index.add([".gitignore", "specs", "data"])
        repo.index.commit("bench specs")
    return specs


# --- seeding: state files written directly --------------------------------------------------


def templates(folder: Path, sample: Path, sha256: str) -> dict[str, Any]:
    """The records one real upload and one real job (succeeded) leave in an emulator's state;
    made through the SDK itself, so they stay whatever shape the emulator gives them."""
    state = folder / "template.json"
    with Emulator(state_path=state, job_seconds=0) as emu:
        client = sdk_client(emu.base_url)
        file = client.files.create(file=(f"ftops-{sha256}.jsonl", sample.read_bytes()),
                                   purpose="fine-tune")
        client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=file.id,
                                       metadata={"ftops_repo": "template"})
        list(client.fine_tuning.jobs.list())  # settles the job: succeeded, its model listed
    raw = json.loads(state.read_text(encoding="utf-8"))
    return {"file": next(f for f in raw["files"] if f["purpose"] == "fine-tune"),
            "job": raw["jobs"][0], "model": raw["models"][0]}


def account_state(project: Project, trains: list[Training], case: Case, tpl: Mapping[str, Any],
                  tag: str) -> dict[str, Any]:
    """An emulator state: a file per dataset, ``case.jobs / case.models`` jobs per model (the
    last one current), and a listed fine-tuned model per job."""
    paths = {d.sha256: d for d in project.desired.datasets}
    start = int(time.time()) - 30 * 86_400
    files, file_ids = [], {}
    for n, sha in enumerate(sorted({t.training.sha256 for t in trains}), start=1):
        file_ids[sha] = f"file-{tag}{n:022d}"
        files.append({**tpl["file"], "id": file_ids[sha], "seq": n, "created_at": start,
                      "bytes": paths[sha].size, "filename": f"ftops-{sha}.jsonl"})
    per_model = case.jobs // case.models
    jobs, models = [], []
    for k in range(per_model):  # oldest first: the creation order the listing walks back
        for i, t in enumerate(trains):
            n = k * len(trains) + i
            current = k == per_model - 1
            fingerprint = t.fingerprint if current else sha256_text(f"{t.fingerprint}-{k}")
            key = f"{tag}{n:07d}"
            job = {**tpl["job"], "id": f"ftjob-{tag}{n:023d}", "model_key": key,
                   "created_at": start + 60 + n, "finished_at": start + 120 + n,
                   "training_file": file_ids[t.training.sha256],
                   "metadata": {**t.metadata, "ftops_fingerprint": fingerprint},
                   "fine_tuned_model": f"ft:{BASE_MODEL}:{tpl['job']['org_slug']}::{key}",
                   "result_files": []}
            jobs.append(job)
            models.append({**tpl["model"], "id": job["fine_tuned_model"],
                           "created": job["finished_at"]})
    return {"version": 1, "next_seq": len(files), "files": files, "deleted_file_seq": {},
            "uploads": [], "parts": [], "jobs": jobs, "models": models}


def seed(project: Project, case: Case, folder: Path) -> dict[str, Path]:
    """Writes each provider's state file (and blobs); returns them by provider."""
    wanted = planner.plan(project.desired, Actual(), today=clock.today())
    datasets = {d.sha256: project.root / d.path for d in project.desired.datasets}
    first = project.desired.datasets[0]
    tpl = templates(folder, project.root / first.path, first.sha256)
    out = {}
    for n, provider in enumerate(PROVIDERS):
        trains = [a.training for a in wanted.actions if a.action is ActionType.TRAIN
                  and a.provider == provider and a.training is not None]
        state = folder / f"state-{provider}.json"
        data = account_state(project, trains, Case(len(trains), case.jobs * len(trains)
                                                   // case.models), tpl, f"p{n}")
        blobs = folder / f"{state.name}.blobs"
        blobs.mkdir()
        for rec in data["files"]:  # the bytes too, for any request that reads them
            os.link(datasets[rec["filename"][len("ftops-"):-len(".jsonl")]], blobs / rec["id"])
        state.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        out[provider] = state
    return out


# --- measuring ------------------------------------------------------------------------------


def env_for(emus: Mapping[str, Emulator]) -> dict[str, str]:
    """What the default provider (the SDK's own variables) and the azure entry need."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(OPENAI_BASE_URL=emus["openai"].base_url, OPENAI_API_KEY=BENCH_KEY,
               **{AZURE_KEY_ENV: BENCH_KEY})
    return env


def served(emus: Mapping[str, Emulator], since: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Per provider: the requests served after ``since`` (stats totals), by listing."""
    out = {}
    for name, emu in emus.items():
        total = emu.stats()["requests"] - since[name]
        entries = emu.requests()[-total:] if total else []
        kinds = {"files": 0, "jobs": 0, "models": 0, "writes": 0, "total": total}
        for e in entries:
            if e["method"] != "GET":
                kinds["writes"] += 1
            else:
                kind = next((k for k in ("jobs", "files", "models") if k in e["path"]), "other")
                kinds[kind] = kinds.get(kind, 0) + 1
        out[name] = kinds
    return out


def totals(emus: Mapping[str, Emulator]) -> dict[str, int]:
    return {name: int(emu.stats()["requests"]) for name, emu in emus.items()}


def in_process(specs: Path, emus: Mapping[str, Emulator]) -> dict[str, Any]:
    """One plan in this process, each stage timed, and the requests it made."""
    since = totals(emus)
    with stopwatch() as loaded:
        project = load_project(specs)
    started = time.perf_counter()
    with session.connect(project) as remotes:
        connected = time.perf_counter() - started
        with stopwatch() as read:
            actual = session.read_actual(remotes)
        with stopwatch() as planned:
            plan = session.plan_for(project, remotes, actual, prune=False,
                                    allow_delete_models=False, today=None)
    return {"load": loaded[0], "connect": connected, "read": read[0], "plan": planned[0],
            "total": loaded[0] + connected + read[0] + planned[0],
            "requests": served(emus, since), "jobs": len(actual.jobs),
            "summary": {k: v for k, v in plan.summary.items() if v}}


def cli_plan(specs: Path, emus: Mapping[str, Emulator]) -> dict[str, Any]:
    """`ftops plan` in a child process: wall time, its peak resident set, the requests."""
    since = totals(emus)
    with stopwatch() as took:
        done = subprocess.run([sys.executable, "-c", MEASURED, "plan", "--specs", str(specs)],
                              env=env_for(emus), cwd=specs.parent, capture_output=True,
                              text=True, check=False, timeout=900)
    peak = re.search(r"VmHWM (\d+)", done.stderr)
    if done.returncode != 0 or peak is None:
        raise SystemExit(f"ftops plan failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return {"wall": took[0], "peak_mb": int(peak.group(1)) * 1024 / 1e6,
            "requests": served(emus, since)}


@contextmanager
def emulators(states: Mapping[str, Path], ports: Mapping[str, int],
              latency_ms: float) -> Iterator[dict[str, Emulator]]:
    with ExitStack() as stack:
        yield {name: stack.enter_context(Emulator(
            port=ports[name], state_path=states[name], job_seconds=0, latency_ms=latency_ms,
            flavor="azure" if name == AZURE else "openai")) for name in PROVIDERS}


def run_case(case: Case, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    ports = {"openai": 0, AZURE: free_port()}
    specs = build_repo(root / "repo", case.models, ports[AZURE])
    with stopwatch() as loaded:
        project = load_project(specs)  # cold: analyses every dataset, cached for the runs
    (root / "state").mkdir()
    with stopwatch() as seeded:
        states = seed(project, case, root / "state")
    print(f"\n{case.label}: first load_project {loaded[0]:.1f}s (cold analysis cache), "
          f"state files written in {seeded[0]:.1f}s")
    with emulators(states, ports, args.latency_ms) as emus:
        os.environ.update(env_for(emus))  # the in-process connect reads the same variables
        runs = [in_process(specs, emus) for _ in range(args.repeat)]
        clis = [cli_plan(specs, emus) for _ in range(args.cli_repeat)]
    return {"case": case, "runs": runs, "clis": clis}


# --- report ---------------------------------------------------------------------------------


def request_rows(result: Mapping[str, Any]) -> list[list[object]]:
    """Per provider: what the plan asked for, the pages that takes, one request per resource."""
    case, run = result["case"], result["runs"][0]
    rows: list[list[object]] = []
    for name in PROVIDERS:
        got = run["requests"][name]
        models = sum(1 for i in range(case.models) if provider_of(i) == name)
        jobs = case.jobs * models // case.models
        pages = 1 + -(-jobs // JOBS_PAGE) + 1  # files (up to FILES_PAGE), jobs, models
        same = all(r["requests"][name] == got for r in result["runs"])
        rows.append([case.label, name, got["total"], got["files"], got["jobs"], got["models"],
                     got["writes"], pages, f"{jobs + models + models:,}",
                     "yes" if same else "NO"])
    return rows


def time_rows(results: list[dict[str, Any]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for result in results:
        case, runs = result["case"], result["runs"]

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return float(statistics.median(r[key] for r in runs))

        clis = result["clis"]
        cli = (f"{statistics.median(c['wall'] for c in clis):.2f} s, "
               f"{max(c['peak_mb'] for c in clis):.0f} MB") if clis else "-"
        rows.append([case.label, f"{med('load'):.2f}", f"{med('connect'):.2f}",
                     f"{med('read'):.2f}", f"{med('plan'):.2f}", f"{med('total'):.2f}",
                     f"{med('total') / case.jobs * 1e6:.0f}",
                     f"{med('read') / case.jobs * 1e6:.0f}",
                     f"{med('plan') / case.jobs * 1e6:.0f}", cli])
    return rows


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nrequests of one plan, per provider (--latency-ms {args.latency_ms:g}); pages: "
          f"files 1 (up to {FILES_PAGE:,}), jobs of {JOBS_PAGE}, models 1:")
    rows = [row for result in results for row in request_rows(result)]
    print_table(["case", "provider", "requests", "files", "jobs", "models", "writes",
                 "O(pages)", "1 per job+model+file", f"same in {args.repeat} runs"], rows)
    print(f"\nwall time, median of {args.repeat} in-process runs (s), per job (us); CLI: "
          f"`ftops plan` in a child process, median wall and peak RSS (VmHWM):")
    print_table(["case", "load_project", "connect", "read", "planner", "total", "us/job",
                 "read us/job", "planner us/job", "CLI"], time_rows(results))
    first, last = results[0], results[-1]
    for key in ("total", "read", "plan"):
        a = statistics.median(r[key] for r in first["runs"])
        b = statistics.median(r[key] for r in last["runs"])
        grow = last["case"].jobs / first["case"].jobs
        models = last["case"].models / first["case"].models
        print(f"{key}: x{b / a:.2f} for x{grow:g} jobs (x{models:g} models): "
              f"{b / a / grow:.2f} of linear in jobs")
    for result in results:
        print(f"{result['case'].label}: plan {result['runs'][0]['summary']}, "
              f"{result['runs'][0]['jobs']:,} jobs read")
    print(machine_note())


def parse_case(text: str) -> Case:
    models, _, jobs = text.partition("x")
    case = Case(int(models), int(jobs))
    if case.models < 2 or case.jobs % case.models or case.models % 2:
        raise argparse.ArgumentTypeError(f"{text}: an even M >= 2 and J a multiple of M")
    return case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=lambda t: [parse_case(c) for c in t.split(",")],
                        default=[Case(200, 2000), Case(1000, 20000)],
                        help="MODELSxJOBS, comma-separated (default 200x2000,1000x20000)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="added to every request of the measured plans")
    parser.add_argument("--repeat", type=int, default=3, help="in-process plans per case")
    parser.add_argument("--cli-repeat", type=int, default=1, help="`ftops plan` runs per case")
    args = parser.parse_args()
    results = []
    for case in args.cases:
        with tempfile.TemporaryDirectory(prefix="ftops-plan-bench-") as tmp:
            results.append(run_case(case, Path(tmp), args))
    report(results, args)


if __name__ == "__main__":
    main()
