"""Peak memory of `ftops apply` uploading four new large datasets through the Uploads API.

Run: .venv/bin/python benchmarks/apply_memory_bench.py [--datasets 4] [--mb 512] [--parallel 4]
     [--latency-ms 20]

Builds a temp git repo with ``--datasets`` models, each training on its own dataset of about
``--mb`` MiB (one valid chat line repeated, a distinct first line per dataset), starts
`ftops emulator --port 0` as a process of its own (its memory is not counted; its jobs run for an
hour, so it spends no time counting their tokens while the apply runs) and then:
1. `ftops plan` once, not measured, so the dataset analysis is cached under .ftops/cache;
2. `ftops apply --auto-approve --parallel N` in a child process that reports its own peak
   resident set (VmHWM of /proc/self/status) when it exits.
Every part the uploads send holds one of the N request slots while it is in memory, so the
peak is about N parts of 64 MiB over the process's own size (goal: under 400 MB at N = 4).
The temp repo and the emulator's blobs are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git
from _common import BASE_MODEL, BENCH_KEY, ORIGIN, chat_jsonl, machine_note, stopwatch

MIB = 1 << 20
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


def write_dataset(path: Path, mb: int, tag: str) -> None:
    """About ``mb`` MiB of valid chat lines, 1 MiB at a time; ``tag`` makes the hash unique."""
    line = chat_jsonl(1, "memory-bench")
    block = line * (MIB // len(line))
    with path.open("wb") as out:
        out.write(chat_jsonl(1, tag))
        for _ in range(mb):
            out.write(block)


def build(root: Path, datasets: int, mb: int) -> Path:
    specs, data = root / "specs", root / "data"
    specs.mkdir(parents=True)
    data.mkdir()
    lines = ["datasets:"]
    for i in range(datasets):
        write_dataset(data / f"big-{i}.jsonl", mb, f"big-{i}")
        lines.append(f"  big-{i}: {{path: ../data/big-{i}.jsonl}}")
    lines.append("models:")
    lines += [f"  m-{i}: {{base: {BASE_MODEL}, training: big-{i}}}" for i in range(datasets)]
    (specs / "models.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / ".gitignore").write_text(".ftops/\n", encoding="utf-8")
    with git.Repo.init(root) as repo:
        with repo.config_writer() as config:
            config.set_value("user", "name", "bench")
            config.set_value("user", "email", "bench@example.invalid")
        repo.create_remote("origin", ORIGIN)
        repo.index.add([".gitignore", "specs", "data"])
        repo.index.commit("memory bench specs")
    return specs


@contextmanager
def emulator(latency_ms: float) -> Iterator[str]:
    """The base URL of `ftops emulator` in a process of its own, stopped (and cleaned) after."""
    child = subprocess.Popen([str(FTOPS), "emulator", "--port", "0", "--job-seconds", "3600",
                              "--latency-ms", str(latency_ms)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        match = re.search(r"serving (\S+)", child.stdout.readline())
        if match is None:
            raise SystemExit("ftops emulator did not start")
        yield match.group(1)
    finally:
        child.send_signal(signal.SIGINT)  # its Ctrl+C path removes the temp blob directory
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:  # stuck: end it (its temp blobs may then stay)
            child.kill()
            child.wait()
            print("the emulator did not stop within 60 s and was killed", file=sys.stderr)


def ftops(base_url: str, specs: Path, *args: str, measured: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=BENCH_KEY)
    command = [sys.executable, "-c", MEASURED] if measured else [str(FTOPS)]
    done = subprocess.run([*command, *args, "--specs", str(specs)], env=env, cwd=specs.parent,
                          capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        print(f"ftops {args[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}",
              file=sys.stderr)
        raise SystemExit(1)
    return done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=4)
    parser.add_argument("--mb", type=int, default=512, help="size of each dataset in MiB")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftops-memory-bench-") as tmp, \
            emulator(args.latency_ms) as base_url:
        with stopwatch() as made:
            specs = build(Path(tmp), args.datasets, args.mb)
        with stopwatch() as planned:
            ftops(base_url, specs, "plan")
        with stopwatch() as applied:
            out = ftops(base_url, specs, "apply", "--auto-approve", "--parallel",
                        str(args.parallel), measured=True)
    found = re.search(r"VmHWM (\d+)", out)
    summary = re.search(r"Apply complete: .*", out)
    if found is None or summary is None:
        raise SystemExit(f"no peak or summary in the apply's output:\n{out}")
    peak_mb = int(found.group(1)) * 1024 / 1e6
    print(f"{args.datasets} datasets of {args.mb} MiB, --parallel {args.parallel}, latency "
          f"{args.latency_ms:g} ms/request; data written in {made[0]:.1f}s, analysed by "
          f"`ftops plan` in {planned[0]:.1f}s (cached for the apply)")
    print(f"apply: {applied[0]:.1f}s, {summary.group(0)}")
    print(f"apply peak RSS (VmHWM): {peak_mb:.0f} MB (goal < 400 MB)")
    print(machine_note())


if __name__ == "__main__":
    main()
