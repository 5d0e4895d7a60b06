"""Shared pieces of the plan/apply/upload benchmarks: a temp git repo of specs and synthetic
datasets, a strict SDK client for an in-process emulator, request counting and a plain table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

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
