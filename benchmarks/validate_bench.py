"""Throughput and memory of ``ftops validate`` against the cookbook notebook's method.

Usage: ``python benchmarks/validate_bench.py [--mb 200] [--rounds 3] [--workdir DIR] [--keep]
[--append]``

Generates a synthetic chat dataset of about ``--mb`` megabytes (seeded; one of 16 system prompts
per example, as real datasets repeat theirs; 5% tool calls, 10% multi-turn with weight 0) in a git
repository, then runs each implementation in its own fresh process on the same file (read from
the page cache):

* notebook (the goal's baseline): the OpenAI cookbook's Chat_finetuning_data_prep notebook's
  method, streamed line by line (lighter than its list of the whole file: conservative):
  ``json.loads`` per line, its format checks, ``num_tokens_from_messages`` (``encoding.encode``
  of every string of every message), ``num_assistant_tokens_from_messages`` (a second encode of
  every assistant message's content; content None, a tool call, is skipped, where the notebook
  would fail), the examples missing a system or user message, ``n_messages``, the three
  distributions (min/max, mean/median, its "p5/p95", which are quantiles 0.1/0.9: numpy is not
  installed, so ``sorted`` and ``statistics`` with numpy's linear interpolation), ``n_too_long``
  and the billing estimate (sum of min(4096, tokens), the default epochs rule), then a separate
  SHA-256 pass;
* light: the baseline measured before, labelled as such: the same without the assistant pass,
  the counts, distributions and billing (it is not the notebook's full method);
* validate: ``ftops validate FILE`` through the CLI's entry point, with an empty cache (a cold
  full run: it analyses every line, and writes the cache an edit or append re-uses); its figures
  are read from the text it prints.

Times are whole processes (start to exit, imports and the encoding's load included), CPU time
includes worker processes, and "others" is the CPU the rest of the machine used meanwhile, in
cores: on a shared machine the ratio depends on it, so the three run alternately for
``--rounds`` rounds; each baseline's ratio to ftops is printed per round, best of each, and as
the median CPU-time ratio (the fair figure on a loaded machine; when idle, the wall ratio is at
most it times the cores ftops gets). Peak memory is the sum of the resident (and proportional:
PSS) sizes of the process and all its children, sampled every 10 ms from /proc (Linux), and
getrusage's self and largest-child peaks. Token totals, and the notebook's assistant tokens and
missing system/user counts, must match ftops's: the check proves the parallel path exact.

``--append`` (default size 200 MB) adds the incremental case: a full analysis with a cache (cold),
then 1 % more lines appended (new examples), then a re-analysis with that cache, which analyses
only the new lines; it prints the re-run's time as a share of the cold one (goal: <= 10 %), and
checks the re-run against a cache-less analysis.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def ftops_analyze(path: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    from ftops.datasets import analyze

    report = analyze(path, token_limit=65536, cache_dir=cache_dir)
    return {"examples": report.examples, "tokens": report.tokens.total,
            "sha256": report.sha256, "errors": report.error_count,
            "assistant_tokens": report.assistant_tokens.total,
            "missing_system": report.missing_system, "missing_user": report.missing_user}


def ftops_validate(path: Path) -> dict[str, Any]:
    """``ftops validate FILE`` as a user runs it (in the file's git repository, so with its
    cache), through the CLI's own entry point; its figures read from the text it prints (the
    assistant tokens are not in ``--json``)."""
    import contextlib
    import io
    import re

    from ftops.cli import main as cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli(["validate", str(path)], prog_name="ftops")
    text = out.getvalue()

    def find(pattern: str) -> tuple[str, ...]:
        found = re.search(pattern, text, re.MULTILINE)
        if found is None:
            raise SystemExit(f"no line matching {pattern!r} in:\n{text}")
        return tuple(g.replace(",", "") for g in found.groups())

    examples, sha = find(r"^  ([\d,]+) examples, [\d,]+ bytes, sha256 (\w+)$")
    (errors,) = find(r"^  errors: (none|\d+)$")
    assistant, system, user = find(r"^  assistant tokens: .* total ([\d,]+); no system "
                                   r"message: (\d+), no user message: (\d+)$")
    return {"examples": int(examples), "tokens": int(find(r"^  tokens: .* total ([\d,]+)$")[0]),
            "sha256": sha, "errors": 0 if errors == "none" else int(errors),
            "assistant_tokens": int(assistant), "missing_system": int(system),
            "missing_user": int(user)}


def _run(which: str, path: Path, cache_dir: Path | None) -> None:
    """Child mode: run one implementation and print its figures as JSON."""
    start = time.perf_counter()
    if which in ("notebook", "light"):
        from cookbook import baseline

        result = baseline(path, notebook=which == "notebook")
    elif which == "validate":
        result = ftops_validate(path)
    else:
        result = ftops_analyze(path, cache_dir)
    result["seconds"] = time.perf_counter() - start
    own, workers = map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    result["self_peak_mb"] = own.ru_maxrss / 1024
    result["child_peak_mb"] = workers.ru_maxrss / 1024
    result["self_cpu"] = own.ru_utime + own.ru_stime  # this process: reading, hashing, merging
    print(json.dumps(result))


def measure(which: str, path: Path, cache_dir: Path | None = None,
            cwd: Path | None = None) -> dict[str, Any]:
    """Runs ``which`` in a fresh process; besides its own figures: the process's wall time and
    CPU time (its workers included) seen from here, and the CPU others used meanwhile."""
    from _common import busy_seconds, tree_memory_mb

    extra = [str(cache_dir)] if cache_dir is not None else []
    busy, started = busy_seconds(), time.perf_counter()
    child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--run", which,
                              str(path), *extra], stdout=subprocess.PIPE, text=True, cwd=cwd)
    peak = [0.0, 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[:] = map(max, peak, tree_memory_mb(child.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # rusage of the child and the workers it reaped
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode:
        raise SystemExit(f"{which} failed with exit code {child.returncode}")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    result["tree_peak_mb"], result["tree_pss_mb"] = peak
    result["process_seconds"] = wall
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    # The sampler's own CPU is in the machine's busy time too; it is small (a /proc read per 10 ms).
    result["others_cores"] = max(busy_seconds() - busy - result["cpu_seconds"], 0.0) / wall
    return result


def _agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same figures, those both report (validate prints 12 digits of the SHA-256)."""
    keys = {"examples", "tokens", "errors", "assistant_tokens", "missing_system", "missing_user"}
    return a["sha256"][:12] == b["sha256"][:12] and all(a[k] == b[k] for k in keys & a.keys()
                                                        & b.keys())


def incremental(path: Path, workdir: Path, megabytes: float) -> bool:
    """Cold cached validate, 1 % new lines appended, cached re-validate; True if exact."""
    from _common import generate_chat, result_line, warm

    cache = workdir / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    cold = measure("ftops", path, cache)
    extra = workdir / "append.jsonl"
    generate_chat(extra, megabytes / 100, seed=8)  # other examples than the file's
    with path.open("ab") as out:
        out.write(extra.read_bytes())
    added = extra.stat().st_size / 1e6
    extra.unlink()
    warm(path)
    # A file changed in the last 20 ms makes analyze wait out its mtime tick; a user's re-run
    # comes later than that.
    time.sleep(0.05)
    again = measure("ftops", path, cache)
    full = measure("ftops", path)  # the appended file without a cache: the truth
    size_mb = path.stat().st_size / 1e6
    print(result_line("cold", size_mb - added, cold) + "   (cached, first run)")
    print(result_line("re-run", size_mb, again) + f"   (cached, after appending {added:.1f} MB)")
    print(result_line("no cache", size_mb, full) + "   (the appended file)")
    share = again["process_seconds"] / cold["process_seconds"]
    print(f"re-validate after a 1% append: {again['process_seconds']:.2f} s = "
          f"{100 * share:.1f}% of the cold run, whole processes "
          f"({100 * again['seconds'] / cold['seconds']:.1f}% inside analyze; "
          f"{100 * again['process_seconds'] / full['process_seconds']:.1f}% of a cache-less run)")
    same = _agree(again, full)
    print("re-validate agrees with a cache-less run (examples, tokens, sha256, errors, "
          "assistant tokens, missing system/user):", same)
    shutil.rmtree(cache, ignore_errors=True)
    return same


BASELINES = {"notebook": "the notebook's method (the goal's baseline)",
             "light": "the lighter baseline measured before (labelled light)"}


def _summary(name: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Best-of and per-round wall ratios, and the median CPU ratio, of one baseline to ftops."""
    wall = [b["process_seconds"] / o["process_seconds"] for b, o in pairs]
    best = min(b["process_seconds"] for b, _ in pairs) / min(o["process_seconds"] for _, o in pairs)
    cpu = sorted(b["cpu_seconds"] / o["cpu_seconds"] for b, o in pairs)[len(pairs) // 2]
    # The baseline uses one core, ftops at most all: when idle, the ratio is at most this.
    print(f"vs {BASELINES[name]}: best of {len(pairs)} {best:.2f}x (rounds: "
          f"{', '.join(f'{r:.2f}x' for r in wall)}); CPU time {name}/ftops {cpu:.2f}x (median); "
          f"bound when idle {cpu * (os.cpu_count() or 1):.2f}x (CPU ratio x CPUs)")


def full_runs(path: Path, workdir: Path, rounds: int) -> bool:
    """Rounds of both baselines and a cold ``ftops validate`` (empty cache), alternated so that
    all meet the same load; prints each round and the ratios. True if all results agree."""
    from _common import result_line

    size_mb = path.stat().st_size / 1e6
    runs: dict[str, list[dict[str, Any]]] = {"notebook": [], "light": [], "validate": []}
    for number in range(1, rounds + 1):
        for which in runs:
            shutil.rmtree(workdir / ".ftops", ignore_errors=True)  # cold: nothing cached
            runs[which].append(measure(which, path, cwd=workdir))
            r = runs[which][-1]
            print(f"round {number}: " + result_line(which, size_mb, r)
                  + (f", {r['assistant_tokens']:,} assistant" if "assistant_tokens" in r else ""))
    shutil.rmtree(workdir / ".ftops", ignore_errors=True)
    ours = runs["validate"]
    cores = sorted(o["cpu_seconds"] / o["process_seconds"] for o in ours)[len(ours) // 2]
    print(f"speed-up of a cold `ftops validate` (whole process, empty cache); ftops ran on "
          f"{cores:.2f} cores (median); load average {os.getloadavg()[0]:.2f}")
    for name in BASELINES:
        _summary(name, list(zip(runs[name], ours, strict=True)))
    same = all(_agree(b, o) for name in BASELINES for b, o in zip(runs[name], ours, strict=True))
    print("results agree (examples, tokens, sha256, errors; notebook: assistant tokens, missing "
          "system/user):", same)
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=None,
                        help="dataset size (default 20, or 200 with --append)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline / validate pairs, alternated (default 3)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the dataset")
    parser.add_argument("--keep", action="store_true", help="keep the generated dataset")
    parser.add_argument("--append", action="store_true",
                        help="also time a cached re-validate after appending 1%% of new lines")
    parser.add_argument("--run", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        _run(args.run[0], Path(args.run[1]), Path(args.run[2]) if len(args.run) > 2 else None)
        return
    from _common import generate_chat, repository, warm  # not in the timed children

    megabytes = args.mb if args.mb is not None else 200.0 if args.append else 20.0
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="ftops-bench-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    repository(workdir)
    path = workdir / f"synthetic-{megabytes:g}mb.jsonl"
    if args.append:  # the case changes the file: work on a copy, keep the kept one intact
        source, path = path, workdir / f"appended-{megabytes:g}mb.jsonl"
        if not source.exists():
            generate_chat(source, megabytes)
        shutil.copyfile(source, path)
    if not path.exists():
        started = time.perf_counter()
        generate_chat(path, megabytes)
        print(f"generated {path} in {time.perf_counter() - started:.1f}s")
    size_mb = path.stat().st_size / 1e6
    warm(path)
    print(f"dataset: {size_mb:.1f} MB, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f}")
    same = full_runs(path, workdir, max(args.rounds, 1))
    if args.append:
        same = incremental(path, workdir, megabytes) and same
        path.unlink()
        path = source
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
