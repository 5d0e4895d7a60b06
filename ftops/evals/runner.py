"""A model's replies to an eval dataset through Chat Completions, cached under ``CACHE_DIR``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ftops.atomic import write_atomic
from ftops.evals.checks import Example
from ftops.evals.results import Run
from ftops.providers import Account, ChatReply

SEED = 0
# One request per example: ride out more transient faults (429/5xx/drops) than a plan needs to.
RETRIES = 6
CACHE_VERSION = 1
CACHE_DIR = Path(".ftops") / "evals"


def _cache_path(cache_dir: Path, provider: str, model_id: str, dataset_sha256: str) -> Path:
    key = json.dumps([CACHE_VERSION, provider, model_id, dataset_sha256, SEED])
    return cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def cached_run(cache_dir: Path, provider: str, model_id: str, examples: Sequence[Example],
               dataset_sha256: str) -> Run | None:
    """``model_id``'s cached replies to every example, or None. Also what a model that no
    longer answers (retired, deleted) is compared by: the replies of its first eval."""
    path = _cache_path(cache_dir, provider, model_id, dataset_sha256)
    if path.exists():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if len(raw["outputs"]) == len(examples):
                return Run(provider, model_id, tuple(raw["outputs"]),
                           raw["prompt_tokens"], raw["completion_tokens"], cached=True)
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is only a missed saving: ask again
    return None


def run_model(remote: Account, model_id: str, examples: Sequence[Example], dataset_sha256: str,
              *, cache_dir: Path, parallel: int = 4, call_as: str | None = None) -> Run:
    """``model_id``'s replies to every example: from the cache, else one request per example
    (naming ``call_as`` where the model answers under another name: an Azure deployment)."""
    cached = cached_run(cache_dir, remote.provider, model_id, examples, dataset_sha256)
    if cached is not None:
        return cached
    path = _cache_path(cache_dir, remote.provider, model_id, dataset_sha256)
    patient = remote.with_retries(RETRIES)

    def ask(example: Example) -> ChatReply:
        return patient.chat(call_as or model_id, list(example.prompt), seed=SEED)

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        replies = list(pool.map(ask, examples))
    run = Run(remote.provider, model_id, tuple(r.text for r in replies),
              sum(r.prompt_tokens for r in replies), sum(r.completion_tokens for r in replies))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Durable, unlike the dataset cache: the replies were paid for, and one sync a run is cheap.
    write_atomic(path, json.dumps({"model_id": model_id, "dataset_sha256": dataset_sha256,
                                   "outputs": list(run.outputs),
                                   "prompt_tokens": run.prompt_tokens,
                                   "completion_tokens": run.completion_tokens}) + "\n")
    return run

