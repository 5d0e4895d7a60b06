"""Shared pieces of the plan/apply/upload benchmarks: a temp git repo of specs and synthetic
datasets, a strict SDK client for an in-process emulator, request counting and a plain table;
and validate_bench's chat data and process measurements (imported by its parent process only)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import git
import openai

from ftops.emulator import Emulator
from ftops.providers import Remote

BASE_MODEL = "gpt-4o-mini-2024-07-18"
BENCH_KEY = "sk-bench"  # the emulator accepts any key; this one is not secret
ORIGIN = "https://github.com/example/ftops-bench.git"  # only read for the repo identity, never used


def chat_jsonl(lines: int, tag: str) -> bytes:
    """``lines`` valid chat examples; ``tag`` makes the bytes (and so the dataset hash) unique."""
    rows = []
    for i in range(lines):
        messages = [
            {"role": "user", "content": f"Question {i} of {tag}?"},
            {"role": "assistant", "content": f"Answer {i} of {tag}."},
        ]
        rows.append(json.dumps({"messages": messages}) + "\n")
    return "".join(rows).encode()


def build_repo(root: Path, models: int, *, lines: int = 10) -> Path:
    """A committed git repo with one dataset and one model per index; returns the specs dir."""
    specs, data = root / "specs", root / "data"
    specs.mkdir(parents=True)
    data.mkdir()
    out = ["datasets:"]
    for i in range(models):
        (data / f"ds-{i:04d}.jsonl").write_bytes(chat_jsonl(lines, f"ds-{i}"))
        out.append(f"  ds-{i:04d}: {{path: ../data/ds-{i:04d}.jsonl}}")
    out.append("models:")
    for i in range(models):
        out.append(f"  m-{i:04d}: {{base: {BASE_MODEL}, training: ds-{i:04d}}}")
    (specs / "models.yaml").write_text("\n".join(out) + "\n", encoding="utf-8")
    with git.Repo.init(root) as repo:
        with repo.config_writer() as config:
            config.set_value("user", "name", "bench")
            config.set_value("user", "email", "bench@example.invalid")
        repo.create_remote("origin", ORIGIN)
        repo.index.add(["specs", "data"])
        repo.index.commit("bench specs")
    return specs


def sdk_client(base_url: str, *, max_retries: int = 0) -> openai.OpenAI:
    """The real SDK, strict about response shapes; proxies ignored so traffic stays on loopback."""
    return openai.OpenAI(
        base_url=base_url,
        api_key=BENCH_KEY,
        max_retries=max_retries,
        _strict_response_validation=True,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


def remotes_for(emu: Emulator, repo: str) -> dict[str, Remote]:
    return {"openai": Remote(sdk_client(emu.base_url), repo=repo)}


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Yields a one-item list that holds the elapsed seconds once the block ends."""
    box = [0.0]
    started = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - started


def count_requests(emu: Emulator, since: int) -> tuple[int, int]:
    """(reads, writes) the emulator served after the first ``since`` log entries."""
    entries = emu.requests()[since:]
    reads = sum(1 for e in entries if e["method"] == "GET")
    return reads, len(entries) - reads


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def machine_note() -> str:
    """CPU count and load: other processes on a small machine skew wall times."""
    one, five, _ = os.getloadavg()
    return f"machine: {os.cpu_count()} CPUs, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def run_cli(base_url: str, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=BENCH_KEY)
    cli = Path(sys.executable).with_name("ftops")
    with stopwatch() as took:
        done = subprocess.run([str(cli), *args], env=env, capture_output=True, text=True,
                              check=False)
    if done.returncode != 0:
        raise SystemExit(f"ftops {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return took[0]


# validate_bench's synthetic chat data (here, so that its timed child processes import less).
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


def generate_chat(path: Path, megabytes: float, seed: int = 7) -> None:
    """validate_bench's dataset: distinct examples (random windows of a corpus) until the file
    reaches ``megabytes``."""
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


# validate_bench's measurements, made by its parent process.
def tree_memory_mb(root: int) -> tuple[float, float]:
    """RSS and PSS megabytes of ``root`` and its descendants (Linux): forked workers share the
    parent's pages (the encoding), which RSS counts in each process and PSS once."""
    kb, frontier = {"Rss:": 0, "Pss:": 0}, [root]
    while frontier:
        pid = frontier.pop()
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                name, *value = line.split()
                if name in kb:
                    kb[name] += int(value[0])
            for task in os.listdir(f"/proc/{pid}/task"):
                frontier += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except OSError:  # the process ended while being read
            continue
    return kb["Rss:"] / 1024, kb["Pss:"] / 1024


def busy_seconds() -> float:
    """CPU-seconds the whole machine has been busy (all processes, all CPUs), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def warm(path: Path) -> None:
    with path.open("rb") as warm:  # page cache, so no run pays for the disk; in blocks,
        while warm.read(1 << 24):  # as a child inherits its parent's peak RSS across exec
            pass


def repository(workdir: Path) -> None:
    """Makes ``workdir`` a git repository, as ``ftops validate`` caches inside the repository."""
    if not (workdir / ".git").exists():
        subprocess.run(["git", "init", "-q", str(workdir)], check=True)


def result_line(label: str, size_mb: float, r: dict[str, Any]) -> str:
    seconds = r["process_seconds"]
    return (f"{label:9s} {size_mb / seconds:7.1f} MB/s {seconds:8.2f} s "
            f"(cpu {r['cpu_seconds']:6.2f} s, {r['self_cpu']:.2f} s of it in the main process, "
            f"others {r['others_cores']:.1f} cores)   "
            f"peak RSS tree {r['tree_peak_mb']:6.0f} MB, PSS {r['tree_pss_mb']:.0f} MB (self "
            f"{r['self_peak_mb']:.0f} MB, largest child {r['child_peak_mb']:.0f} MB)   "
            f"{r['examples']:,} examples, {r['tokens']:,} tokens")
