"""Upload of a large dataset: ftops's Remote.upload (Uploads API, parts in parallel) versus the
SDK's sequential ``client.uploads.upload_file_chunked``.

Run: .venv/bin/python benchmarks/upload_bench.py [--mb 1024] [--latency-ms 100] [--parallel 4]
     [--part-mb 64] [--repeat 1] [--emulator-process]

Writes a synthetic JSONL file of about ``--mb`` MiB under a temp dir and uploads it to an
emulator on 127.0.0.1 (``--latency-ms`` on every request): in process by default, or with
--emulator-process as a separate `ftops emulator --port 0` process, so the server's parsing does
not compete with the client for one interpreter lock. Modes:
- sdk: ``uploads.upload_file_chunked`` (parts one after another; no md5, the SDK's default);
- ftops p1 / pN: ``Remote.upload`` with 1 and N workers (parts, hashing the bytes sent with
  SHA-256 in file order and refusing them before complete unless they match the dataset's hash).
The dataset's sha256 is computed before timing (ftops has it from dataset analysis). Each
uploaded file is checked for its size and deleted afterwards. Part size and threshold are ftops's
own (64 MiB); below the threshold Remote.upload would send one request, so smaller --mb runs
lower the threshold to the file size to still exercise parts.
Target: ftops pN at least 2x faster than the SDK.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import chat_jsonl, machine_note, print_table, sdk_client, stopwatch

from ftops.emulator import Emulator
from ftops.providers import MULTIPART_THRESHOLD, PART_SIZE, Remote

MIB = 1 << 20


def write_dataset(path: Path, mb: int) -> None:
    """About ``mb`` MiB of valid chat lines, written 1 MiB at a time."""
    line = chat_jsonl(1, "upload-bench")
    block = line * (MIB // len(line))
    with path.open("wb") as out:
        for _ in range(mb):
            out.write(block)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def serve(latency_ms: float, *, separate: bool) -> Iterator[str]:
    """Yields the base URL of a fresh emulator, in this process or in a child process."""
    if not separate:
        with Emulator(latency_ms=latency_ms) as emu:
            yield emu.base_url
        return
    command = [str(Path(sys.executable).with_name("ftops")), "emulator", "--port", "0",
               "--latency-ms", str(latency_ms), "--job-seconds", "0"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        banner = child.stdout.readline()
        match = re.search(r"serving (\S+)", banner)
        if match is None:
            raise SystemExit(f"ftops emulator did not start: {banner!r}")
        yield match.group(1)
    finally:
        child.send_signal(signal.SIGINT)  # its Ctrl+C path removes the temp blob directory
        child.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--parallel", type=int, default=4, help="Remote.upload workers")
    parser.add_argument("--part-mb", type=int, default=PART_SIZE // MIB)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--emulator-process", action="store_true",
                        help="run the emulator as a separate process")
    args = parser.parse_args()
    part_size = args.part_mb * MIB

    with tempfile.TemporaryDirectory(prefix="ftops-upload-bench-") as tmp, \
            serve(args.latency_ms, separate=args.emulator_process) as base_url:
        path = Path(tmp) / "big.jsonl"
        write_dataset(path, args.mb)
        size = path.stat().st_size
        with stopwatch() as sha_time:
            sha = sha256(path)  # Remote.upload hashes the bytes it sends once more
        threshold = min(MULTIPART_THRESHOLD, size)
        client = sdk_client(base_url)
        remote = Remote(client, repo="bench")

        def sdk() -> tuple[str, int]:
            done = client.uploads.upload_file_chunked(
                file=path, mime_type="application/jsonl", purpose="fine-tune",
                part_size=part_size)
            assert done.file is not None
            return done.file.id, done.file.bytes

        def ftops(workers: int) -> Callable[[], tuple[str, int]]:
            def run() -> tuple[str, int]:
                done = remote.upload(path, sha, parallel=workers, threshold=threshold,
                                     part_size=part_size)
                return done.id, done.bytes
            return run

        modes = {"sdk upload_file_chunked (sequential)": sdk, "ftops Remote.upload p1": ftops(1),
                 f"ftops Remote.upload p{args.parallel}": ftops(args.parallel)}
        times: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(args.repeat):
            for name, upload in modes.items():
                os.sync()  # the last run's blobs are written back now, not during this one
                with stopwatch() as took:
                    file_id, uploaded = upload()
                if uploaded != size:
                    raise SystemExit(f"{name}: uploaded {uploaded} bytes, expected {size}")
                client.files.delete(file_id)  # keeps the emulator's blob dir at one copy
                times[name].append(took[0])

    parts = -(-size // part_size)
    sdk_median = statistics.median(times["sdk upload_file_chunked (sequential)"])
    print(f"upload of {size / MIB:.0f} MiB in {parts} parts of {args.part_mb} MiB, latency "
          f"{args.latency_ms:g} ms/request, emulator "
          f"{'in a separate process' if args.emulator_process else 'in process'}, "
          f"{args.repeat} run(s) each; "
          f"sha256 of the file alone: {sha_time[0]:.2f}s")
    print_table(["mode", "median s", "runs s", "MiB/s", "vs sdk"], [
        [name, f"{statistics.median(ts):.2f}", " ".join(f"{t:.2f}" for t in ts),
         f"{size / MIB / statistics.median(ts):.0f}", f"{sdk_median / statistics.median(ts):.2f}x"]
        for name, ts in times.items()])
    print(machine_note())


if __name__ == "__main__":
    main()
