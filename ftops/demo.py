"""``ftops demo``: a round-trip with the real SDK on the embedded emulator (no key, no network)."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources
from itertools import groupby

import openai

from ftops.emulator import Emulator
from ftops.errors import FtopsError

SAMPLE = "data/sample_train.jsonl"
BASE_MODEL = "gpt-4o-mini-2024-07-18"


def run(echo: Callable[[str], None], *, job_seconds: float = 1.0, timeout: float = 30.0) -> str:
    """Uploads the bundled sample, trains on it, follows the job; returns the model id."""
    data = resources.files("ftops").joinpath(SAMPLE).read_bytes()
    with Emulator(job_seconds=job_seconds) as emulator:
        echo(f"Emulator listening on {emulator.base_url}")
        # trust_env=False: a proxy configured in the environment must not see local traffic.
        client = openai.OpenAI(
            base_url=emulator.base_url,
            api_key="sk-emulator",  # the emulator accepts any key; this one is not a secret
            http_client=openai.DefaultHttpxClient(trust_env=False),
        )
        uploaded = client.files.create(file=("sample_train.jsonl", data), purpose="fine-tune")
        echo(f"Uploaded sample_train.jsonl ({uploaded.bytes} bytes) as {uploaded.id}")
        job = client.fine_tuning.jobs.create(
            model=BASE_MODEL, training_file=uploaded.id, suffix="ftops-demo"
        )
        echo(f"Created job {job.id} on {job.model}")
        seen = [job.status]
        deadline = time.monotonic() + timeout
        while job.status not in ("succeeded", "failed", "cancelled"):
            if time.monotonic() > deadline:
                raise FtopsError(f"job {job.id} did not finish within {timeout:.0f}s")
            time.sleep(min(0.1, job_seconds / 10 or 0.01))
            job = client.fine_tuning.jobs.retrieve(job.id)
            if job.status != seen[-1]:
                seen.append(job.status)
        echo(f"Job {job.id}: {' -> '.join(seen)}")
        if job.status != "succeeded" or job.fine_tuned_model is None:
            reason = job.error.message if job.error else job.status
            raise FtopsError(f"demo job {job.id} did not succeed: {reason}")
        echo(f"Fine-tuned model: {job.fine_tuned_model}")
        log = emulator.requests()
        echo(f"Requests made ({len(log)}):")
        # Consecutive identical requests (the polling) are shown once with a count.
        for (method, path, status), group in groupby(
            (e["method"], e["path"], e["status"]) for e in log
        ):
            repeat = len(list(group))
            echo(f"  {method:6} {path}  {status}" + (f"  x{repeat}" if repeat > 1 else ""))
        return job.fine_tuned_model
