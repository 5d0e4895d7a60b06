"""Throughput and memory of ``ftops validate`` against a cookbook-style baseline.

Usage: ``python benchmarks/validate_bench.py [--mb 200] [--rounds 3] [--workdir DIR] [--keep]
[--append]``

Generates a synthetic chat dataset of about ``--mb`` megabytes (seeded; one of 16 system prompts
per example, as real datasets repeat theirs; 5% tool calls, 10% multi-turn with weight 0) in a git
repository, then runs each implementation in its own fresh process on the same file (read from
the page cache):

* baseline: the way the cookbook's Chat_finetuning_data_prep notebook works, streamed line by
  line so it does not also hold the whole file: ``json.loads`` per line, its format checks,
  ``encoding.encode`` of every string of every message, then a separate SHA-256 pass;
* validate: ``ftops validate FILE --json`` through the CLI's entry point, with an empty cache (a
  cold full run: it analyses every line, and writes the cache an edit or append re-uses).

Times are whole processes (start to exit, imports and the encoding's load included), CPU time
includes worker processes, and "others" is the CPU the rest of the machine used meanwhile, in
cores: on a shared machine the ratio depends on it, so the two run alternately for ``--rounds``
rounds and the best of each is compared as well as each round. Peak memory is the sum of the
resident sizes of the process and all its children, sampled every 10 ms from /proc (Linux), and
getrusage's self and largest-child peaks. Token totals must match: the baseline counts with the
same rule, so the check proves the parallel path exact at scale.

``--append`` (default size 200 MB) adds the incremental case: a full analysis with a cache (cold),
then 1 % more lines appended (new examples), then a re-analysis with that cache, which analyses
only the new lines; it prints the re-run's time as a share of the cold one (goal: <= 10 %), and
checks the re-run against a cache-less analysis.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this from I have "
    "or by one had not but what all were when we there can an your which their said if do will "
    "each about how up out them then she many some so these would other into has more her two "
    "like him see time could make than first been its who now people my made over did down only "
    "way find use may water long little very after words called just where most know customer "
    "order refund shipping account password invoice tracking delivery warranty product service "
    "support request ticket issue error update cancel subscription billing payment"
)
VOCABULARY = WORDS.split()
EXTRAS = ["café", "naïve", "日本語", "Grüße", "100%", "$42.50", "2024-07-18", "don't", "it's",
          "(see below)", "`code`", "->", "#123", "https://example.com/a?b=c"]
TOOLS = [{"type": "function", "function": {
    "name": "lookup_order", "description": "Look up an order by id",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                   "required": ["order_id"]}}}]


def _corpus(rng: random.Random, words: int = 600_000) -> str:
    out = []
    for _ in range(words):
        out.append(rng.choice(EXTRAS) if rng.random() < 0.04 else rng.choice(VOCABULARY))
        mark = rng.random()
        out.append(". " if mark < 0.06 else ", " if mark < 0.09 else "\n" if mark < 0.095 else " ")
    return "".join(out)


def generate(path: Path, megabytes: float, seed: int = 7) -> None:
    """Distinct examples (random windows of a corpus) until the file reaches ``megabytes``."""
    rng = random.Random(seed)
    text = _corpus(rng)
    systems = [f"You are the support assistant of shop {i}. {text[i * 997:i * 997 + 600]}"
               for i in range(16)]

    def snippet(low: int, high: int) -> str:
        n = rng.randint(low, high)
        start = rng.randrange(len(text) - n)
        return text[start:start + n]

    target, size = int(megabytes * 1e6), 0
    with path.open("w", encoding="utf-8") as out:
        while size < target:
            example: dict[str, Any] = {}
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": rng.choice(systems)},
                {"role": "user", "content": snippet(100, 1500)},
            ]
            kind = rng.random()
            if kind < 0.05:
                example["tools"] = TOOLS
                call = f"call_{rng.randrange(10**9)}"
                arguments = json.dumps({"order_id": str(rng.randrange(10**6))})
                messages.append({"role": "assistant", "content": None, "tool_calls": [
                    {"id": call, "type": "function",
                     "function": {"name": "lookup_order", "arguments": arguments}}]})
                messages.append({"role": "tool", "tool_call_id": call, "content": snippet(50, 300)})
            elif kind < 0.15:
                messages.append({"role": "assistant", "content": snippet(100, 800), "weight": 0})
                messages.append({"role": "user", "content": snippet(50, 600)})
            messages.append({"role": "assistant", "content": snippet(100, 2500)})
            example["messages"] = messages
            line = json.dumps(example, ensure_ascii=rng.random() < 0.5) + "\n"
            out.write(line)
            size += len(line.encode())


def baseline(path: Path) -> dict[str, Any]:
    """The cookbook notebook's steps, one line at a time, then a separate hash pass."""
    from ftops.tokens import get_encoding

    encoding = get_encoding("o200k_base")

    def compact(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def num_tokens_from_messages(messages: list[dict[str, Any]], tools: Any) -> int:
        num_tokens = 0
        for message in messages:
            num_tokens += 3
            for key, value in message.items():
                if isinstance(value, str):
                    num_tokens += len(encoding.encode(value))
                    if key == "name":
                        num_tokens += 1
                elif key in ("tool_calls", "function_call") and value:
                    num_tokens += len(encoding.encode(compact(value)))
        if tools:
            num_tokens += len(encoding.encode(compact(tools)))
        return num_tokens + 3

    format_errors: dict[str, int] = defaultdict(int)
    convo_lens = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            ex = json.loads(line)
            if not isinstance(ex, dict):
                format_errors["data_type"] += 1
                continue
            messages = ex.get("messages", None)
            if not messages:
                format_errors["missing_messages_list"] += 1
                continue
            for message in messages:
                if "role" not in message or "content" not in message:
                    format_errors["message_missing_key"] += 1
                if any(k not in ("role", "content", "name", "function_call", "weight",
                                 "tool_calls", "tool_call_id") for k in message):
                    format_errors["message_unrecognized_key"] += 1
                if message.get("role", None) not in ("system", "user", "assistant", "tool"):
                    format_errors["unrecognized_role"] += 1
                content = message.get("content", None)
                calls = message.get("function_call", None) or message.get("tool_calls", None)
                if (not content and not calls) or not isinstance(content, (str, type(None))):
                    format_errors["missing_content"] += 1
            if not any(message.get("role", None) == "assistant" for message in messages):
                format_errors["example_missing_assistant_message"] += 1
            convo_lens.append(num_tokens_from_messages(messages, ex.get("tools")))
    sha = hashlib.sha256()
    with path.open("rb") as data:
        while block := data.read(1 << 20):
            sha.update(block)
    return {"examples": len(convo_lens), "tokens": sum(convo_lens), "sha256": sha.hexdigest(),
            "errors": sum(format_errors.values())}


def ftops_analyze(path: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    from ftops.datasets import analyze

    report = analyze(path, token_limit=65536, cache_dir=cache_dir)
    return {"examples": report.examples, "tokens": report.tokens.total,
            "sha256": report.sha256, "errors": report.error_count}


def ftops_validate(path: Path) -> dict[str, Any]:
    """``ftops validate FILE --json`` as a user runs it (in the file's git repository, so with
    its cache), through the CLI's own entry point."""
    import contextlib
    import io

    from ftops.cli import main as cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli(["validate", str(path), "--json"], prog_name="ftops")
    dataset = json.loads(out.getvalue())["datasets"][0]
    return {"examples": dataset["examples"], "tokens": dataset["tokens"]["total"],
            "sha256": dataset["sha256"], "errors": dataset["error_count"]}


def _run(which: str, path: Path, cache_dir: Path | None) -> None:
    """Child mode: run one implementation and print its figures as JSON."""
    start = time.perf_counter()
    if which == "baseline":
        result = baseline(path)
    elif which == "validate":
        result = ftops_validate(path)
    else:
        result = ftops_analyze(path, cache_dir)
    result["seconds"] = time.perf_counter() - start
    result["self_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["child_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(result))


def _tree_rss_mb(root: int) -> float:
    """Resident megabytes of ``root`` and all its descendants, from /proc (Linux)."""
    total_kb, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
            for task in os.listdir(f"/proc/{pid}/task"):
                frontier += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except OSError:  # the process ended while being read
            continue
    return total_kb / 1024


def _busy_seconds() -> float:
    """CPU-seconds the whole machine has been busy (all processes, all CPUs), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def measure(which: str, path: Path, cache_dir: Path | None = None,
            cwd: Path | None = None) -> dict[str, Any]:
    """Runs ``which`` in a fresh process; besides its own figures: the process's wall time and
    CPU time (its workers included) seen from here, and the CPU others used meanwhile."""
    extra = [str(cache_dir)] if cache_dir is not None else []
    busy, started = _busy_seconds(), time.perf_counter()
    child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--run", which,
                              str(path), *extra], stdout=subprocess.PIPE, text=True, cwd=cwd)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_mb(child.pid))
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
    result["tree_peak_mb"] = peak
    result["process_seconds"] = wall
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    # The sampler's own CPU is in the machine's busy time too; it is small (a /proc read per 10 ms).
    result["others_cores"] = max(_busy_seconds() - busy - result["cpu_seconds"], 0.0) / wall
    return result


def _line(label: str, size_mb: float, r: dict[str, Any]) -> str:
    seconds = r["process_seconds"]
    return (f"{label:9s} {size_mb / seconds:7.1f} MB/s {seconds:8.2f} s "
            f"(cpu {r['cpu_seconds']:6.2f} s, others {r['others_cores']:.1f} cores)   "
            f"peak RSS tree {r['tree_peak_mb']:6.0f} MB (self {r['self_peak_mb']:.0f} MB, "
            f"largest child {r['child_peak_mb']:.0f} MB)   "
            f"{r['examples']:,} examples, {r['tokens']:,} tokens")


def _agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in ("examples", "tokens", "sha256", "errors"))


def _warm(path: Path) -> None:
    with path.open("rb") as warm:  # page cache, so no run pays for the disk; in blocks,
        while warm.read(1 << 24):  # as a child inherits its parent's peak RSS across exec
            pass


def incremental(path: Path, workdir: Path, megabytes: float) -> bool:
    """Cold cached validate, 1 % new lines appended, cached re-validate; True if exact."""
    cache = workdir / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    cold = measure("ftops", path, cache)
    extra = workdir / "append.jsonl"
    generate(extra, megabytes / 100, seed=8)  # other examples than the file's
    with path.open("ab") as out:
        out.write(extra.read_bytes())
    added = extra.stat().st_size / 1e6
    extra.unlink()
    _warm(path)
    # A file changed in the last 20 ms makes analyze wait out its mtime tick; a user's re-run
    # comes later than that.
    time.sleep(0.05)
    again = measure("ftops", path, cache)
    full = measure("ftops", path)  # the appended file without a cache: the truth
    size_mb = path.stat().st_size / 1e6
    print(_line("cold", size_mb - added, cold) + "   (cached, first run)")
    print(_line("re-run", size_mb, again) + f"   (cached, after appending {added:.1f} MB)")
    print(_line("no cache", size_mb, full) + "   (the appended file)")
    share = again["process_seconds"] / cold["process_seconds"]
    print(f"re-validate after a 1% append: {again['process_seconds']:.2f} s = "
          f"{100 * share:.1f}% of the cold run, whole processes "
          f"({100 * again['seconds'] / cold['seconds']:.1f}% inside analyze; "
          f"{100 * again['process_seconds'] / full['process_seconds']:.1f}% of a cache-less run)")
    same = _agree(again, full)
    print("re-validate agrees with a cache-less run (examples, tokens, sha256, errors):", same)
    shutil.rmtree(cache, ignore_errors=True)
    return same


def _repository(workdir: Path) -> None:
    """Makes ``workdir`` a git repository, as ``ftops validate`` caches inside the repository."""
    if not (workdir / ".git").exists():
        subprocess.run(["git", "init", "-q", str(workdir)], check=True)


def full_runs(path: Path, workdir: Path, rounds: int) -> bool:
    """Rounds of the baseline and a cold ``ftops validate`` (empty cache), alternated so that
    both meet the same load; prints each round and the ratios. True if all results agree."""
    size_mb = path.stat().st_size / 1e6
    ratios, pairs, same = [], [], True
    for number in range(1, rounds + 1):
        base = measure("baseline", path)
        shutil.rmtree(workdir / ".ftops", ignore_errors=True)  # cold: nothing cached
        ours = measure("validate", path, cwd=workdir)
        print(f"round {number}: " + _line("baseline", size_mb, base))
        print(f"round {number}: " + _line("validate", size_mb, ours)
              + f"   speed-up {base['process_seconds'] / ours['process_seconds']:.2f}x")
        ratios.append(base["process_seconds"] / ours["process_seconds"])
        pairs.append((base, ours))
        same = same and _agree(base, ours)
    shutil.rmtree(workdir / ".ftops", ignore_errors=True)
    best_base = min(b["process_seconds"] for b, _ in pairs)
    best_ours = min(o["process_seconds"] for _, o in pairs)
    cpu = sorted(b["cpu_seconds"] / o["cpu_seconds"] for b, o in pairs)[len(pairs) // 2]
    cores = sorted(o["cpu_seconds"] / o["process_seconds"] for _, o in pairs)[len(pairs) // 2]
    print(f"speed-up of a cold `ftops validate` (whole process, empty cache): best of {rounds} "
          f"{best_base / best_ours:.2f}x (rounds: {', '.join(f'{r:.2f}x' for r in ratios)}); "
          f"CPU time baseline/ftops {cpu:.2f}x, ftops ran on {cores:.2f} cores (median); "
          f"load average {os.getloadavg()[0]:.2f}")
    print("results agree (examples, tokens, sha256, errors):", same)
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
    megabytes = args.mb if args.mb is not None else 200.0 if args.append else 20.0
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="ftops-bench-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _repository(workdir)
    path = workdir / f"synthetic-{megabytes:g}mb.jsonl"
    if args.append:  # the case changes the file: work on a copy, keep the kept one intact
        source, path = path, workdir / f"appended-{megabytes:g}mb.jsonl"
        if not source.exists():
            generate(source, megabytes)
        shutil.copyfile(source, path)
    if not path.exists():
        started = time.perf_counter()
        generate(path, megabytes)
        print(f"generated {path} in {time.perf_counter() - started:.1f}s")
    size_mb = path.stat().st_size / 1e6
    _warm(path)
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
