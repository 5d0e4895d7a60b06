"""Fill the emulator with 10,000 files and 10,000 jobs over HTTP, then time list pages.

Run: .venv/bin/python benchmarks/emulator_bench.py [--files N] [--jobs N] [--repeat N]
Prints p50/p95 latency in milliseconds of each list request, measured end to end over HTTP
(new TCP connection per request, as werkzeug closes each one) from a client in the same process.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from ftops.emulator import Emulator

AUTH = {"Authorization": "Bearer sk-bench"}


def call(port: int, method: str, path: str, body: bytes | None = None, **headers: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={**AUTH, **headers})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return json.loads(data)
    finally:
        conn.close()


def upload(port: int, name: str, content: bytes) -> str:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    ctype = f"multipart/form-data; boundary={boundary}"
    return str(call(port, "POST", "/v1/files", body, **{"Content-Type": ctype})["id"])


def chat_lines(n: int) -> bytes:
    line = {
        "messages": [
            {"role": "user", "content": "ping"},
            {"role": "assistant", "content": "pong"},
        ]
    }
    return (json.dumps(line) + "\n").encode() * n


def fill(port: int, files: int, jobs: int) -> tuple[list[str], list[str]]:
    training = upload(port, "train.jsonl", chat_lines(10))
    with ThreadPoolExecutor(8) as pool:
        file_ids = list(pool.map(lambda i: upload(port, f"f{i}.jsonl", b"x\n"), range(files - 1)))

        def create(i: int) -> str:
            body = {
                "model": "gpt-4o-mini-2024-07-18",
                "training_file": training,
                "metadata": {"ftops_model": f"model-{i % 100}"},
            }
            data = json.dumps(body).encode()
            job = call(
                port, "POST", "/v1/fine_tuning/jobs", data, **{"Content-Type": "application/json"}
            )
            return str(job["id"])

        job_ids = list(pool.map(create, range(jobs)))
    return [training, *file_ids], job_ids


def measure(port: int, paths: list[str]) -> tuple[float, float]:
    times = []
    for path in paths:
        started = time.perf_counter()
        call(port, "GET", path)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(0)
    with Emulator(job_seconds=0) as emu:
        started = time.perf_counter()
        file_ids, job_ids = fill(emu.port, args.files, args.jobs)
        filled = time.perf_counter() - started
        listed = call(emu.port, "GET", "/v1/files?limit=10000")
        print(
            f"filled {len(file_ids)} files + {len(job_ids)} jobs (job_seconds=0: each succeeded, "
            f"adding a result file) in {filled:.1f}s; "
            f"files now {len(listed['data'])}{'+' if listed['has_more'] else ''}"
        )

        def query(base: str, **params: object) -> str:
            return f"{base}?{urlencode(params)}"

        n = args.repeat
        cases = {
            "jobs limit=100 (first page)": [query("/v1/fine_tuning/jobs", limit=100)] * n,
            "jobs limit=100 after=<random>": [
                query("/v1/fine_tuning/jobs", limit=100, after=rng.choice(job_ids))
                for _ in range(n)
            ],
            "jobs limit=100 metadata[ftops_model]=<1 of 100>": [
                query("/v1/fine_tuning/jobs", limit=100, **{"metadata[ftops_model]": f"model-{i}"})
                for i in range(n)
            ],
            "files limit=100 (first page, desc)": [query("/v1/files", limit=100)] * n,
            "files limit=100 order=asc after=<random>": [
                query("/v1/files", limit=100, order="asc", after=rng.choice(file_ids))
                for _ in range(n)
            ],
            "files purpose=fine-tune limit=10000 (full page)": [
                query("/v1/files", purpose="fine-tune", limit=10_000)
            ]
            * max(1, n // 10),
        }
        print(f"{'request':52} {'p50 ms':>8} {'p95 ms':>8}")
        for name, paths in cases.items():
            p50, p95 = measure(emu.port, paths)
            print(f"{name:52} {p50:8.2f} {p95:8.2f}")


if __name__ == "__main__":
    main()
