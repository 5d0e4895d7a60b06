"""A job's progress as a pure function of its record and the clock: status, events, checkpoints,
training metrics and the results CSV. No background threads: reading a job computes where it is.
The one reading of data is ``billable_tokens``, done once when a job is created.

A job of duration T spends [0, 0.1T) validating files, [0.1T, 0.2T) queued, [0.2T, T) running,
measured in effective seconds (wall time minus time spent paused).
"""

from __future__ import annotations

import hashlib
import math
import random
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ftops import catalog, cost
from ftops.datasets.lines import make_settings, new_counter, scan_lines
from ftops.emulator.store import JobRec, open_blob

VALIDATED = 0.1
STARTED = 0.2
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
_B62 = string.ascii_letters + string.digits
_METRIC_EVENTS = 20
_MAX_CSV_ROWS = 10_000
# The dataset format ``ftops validate`` reads for each fine-tuning method.
_FORMATS = {"supervised": "chat", "dpo": "preference", "reinforcement": "reinforcement"}
_SCAN_BYTES = 4 * 1024**2  # whole lines handed to the counter at a time: memory stays flat
_VALID = ("valid_loss", "valid_mean_token_accuracy")


@dataclass(frozen=True)
class Event:
    key: str
    wall: float
    level: str
    message: str
    type: str = "message"
    data: dict[str, Any] | None = None


def stable_id(prefix: str, *parts: object) -> str:
    """An id that is the same on every read of the same job (cursors must stay valid)."""
    # "big" is the default of 3.11+, where ids were first made; 3.10 requires the argument.
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    number = int.from_bytes(digest[:18], "big")
    chars = []
    for _ in range(24):
        number, rest = divmod(number, 62)
        chars.append(_B62[rest])
    return prefix + "".join(chars)


# clock -----------------------------------------------------------------------------------------
def _paused_seconds(job: JobRec, until: float) -> float:
    total = 0.0
    for _, start, end in job.pauses:
        if start < until:
            total += min(end if end is not None else until, until) - start
    return total


def effective(job: JobRec, now: float) -> float:
    """Seconds of progress made by ``now`` (frozen while paused and after cancellation)."""
    t = now if job.cancelled_at is None else min(now, job.cancelled_at)
    return max(0.0, t - job.created_at - _paused_seconds(job, t))


def wall(job: JobRec, progress: float) -> float:
    """The wall-clock time at which the job reaches ``progress`` effective seconds."""
    paused = sum(end - start for at, start, end in job.pauses if at < progress and end is not None)
    return job.created_at + progress + paused


def is_paused(job: JobRec) -> bool:
    return bool(job.pauses) and job.pauses[-1][2] is None and job.final_status is None


def status(job: JobRec, now: float) -> str:
    if job.final_status:
        return job.final_status
    if is_paused(job):
        return "paused"
    progress, span = effective(job, now), job.duration
    if progress < VALIDATED * span:
        return "validating_files"
    if job.failure:
        return "failed"
    if progress < STARTED * span:
        return "queued"
    return "running" if progress < span else "succeeded"


def due(job: JobRec) -> float | None:
    """When the job reaches its terminal state, or None if that is not scheduled (yet)."""
    if job.final_status or is_paused(job):
        return None
    if job.failure:
        return job.created_at + VALIDATED * job.duration
    return wall(job, job.duration)


# training --------------------------------------------------------------------------------------
def resolve_hyperparameters(
    requested: dict[str, Any], method: str, examples: int
) -> dict[str, Any]:
    """Replaces "auto" the way the service does, from the size of the training set."""
    resolved = dict(requested)
    if resolved.get("n_epochs") == "auto":
        # The rule ``ftops validate`` estimates with, so its estimate and trained_tokens agree.
        resolved["n_epochs"] = cost.default_epochs(examples)
    if resolved.get("batch_size") == "auto":
        resolved["batch_size"] = max(1, min(256, round(examples * 0.002)))
    if resolved.get("learning_rate_multiplier") == "auto":
        resolved["learning_rate_multiplier"] = 1.8 if method == "supervised" else 1.0
    defaults = {"beta": 0.1, "compute_multiplier": 1.0, "eval_interval": 1, "eval_samples": 1}
    for key, value in defaults.items():
        if resolved.get(key) == "auto":
            resolved[key] = value
    return resolved


def billable_tokens(path: Path, method: str, base: str) -> int:
    """Tokens one epoch over the training file at ``path`` bills: the sum over its examples of
    min(per-example limit, tokens), for the catalog's snapshot ``base``.

    Counted by the loop ``ftops validate`` runs (``ftops.datasets.lines.scan_lines``) with the
    model's encoding and limit, so that the estimate before a job and its ``trained_tokens``
    after agree to the token. Examples that validate refuses count nothing, as in its estimate.
    """
    stat = path.stat()
    return _billable(path, stat.st_mtime_ns, stat.st_size, _FORMATS.get(method, "chat"), base)


@lru_cache(maxsize=64)
def _billable(path: Path, mtime_ns: int, size: int, fmt: str, base: str) -> int:
    # Keyed by mtime and size too, so a rewritten blob is read again: many jobs may share a file.
    info = catalog.load().model(base)
    encoding = info.encoding if info else "o200k_base"
    limit = info.example_token_limit if info else None
    settings = make_settings(fmt, encoding, limit, max_errors=0, size_limit=size + 1)
    counter = new_counter(encoding)
    total, held = 0, 0
    block: list[bytes] = []
    with open_blob(path) as lines:
        for line in lines:  # a blob may be an upload's parts: read it through open_blob
            block.append(line)
            held += len(line)
            if held >= _SCAN_BYTES:
                total += scan_lines(b"".join(block), settings, counter).billable
                block, held = [], 0
    if block:
        total += scan_lines(b"".join(block), settings, counter).billable
    return total


def steps_per_epoch(job: JobRec) -> int:
    return max(1, math.ceil(job.examples / int(job.resolved["batch_size"])))


def total_steps(job: JobRec) -> int:
    return steps_per_epoch(job) * int(job.resolved["n_epochs"])


def _step_progress(job: JobRec, step: int) -> float:
    return job.duration * (STARTED + (1 - STARTED) * step / total_steps(job))


@lru_cache(maxsize=256)
def _curve(job_id: str) -> tuple[float, float, float]:
    """(initial loss, final loss, decay rate) of a job: seeded by its id, so deterministic."""
    rng = random.Random(job_id)
    return rng.uniform(1.8, 2.6), rng.uniform(0.15, 0.45), rng.uniform(3.0, 6.0)


def metrics(job: JobRec, step: int, steps: int | None = None) -> dict[str, float]:
    """Smooth, strictly decreasing losses and rising accuracies at ``step`` of ``steps``; the
    validation figures only for a job given a validation file, as the service reports them."""
    start, floor, rate = _curve(job.id)
    decay = math.exp(-rate * step / (steps or total_steps(job)))
    train_loss = floor + (start - floor) * decay
    train_accuracy = 0.95 - 0.55 * decay
    found = {
        "step": step,
        "train_loss": round(train_loss, 6),
        "train_mean_token_accuracy": round(train_accuracy, 6),
    }
    if job.validation_file:
        found["valid_loss"] = round(train_loss * 1.06 + 0.02, 6)
        found["valid_mean_token_accuracy"] = round(train_accuracy * 0.97, 6)
    return found


def results_csv(job: JobRec) -> bytes:
    """OpenAI's results file: the same five columns with or without validation, whose cells
    stay empty when nothing was validated (``ftops.render.charts`` reads them so)."""
    steps = total_steps(job)
    stride = max(1, math.ceil(steps / _MAX_CSV_ROWS))
    rows = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
    for step in [*range(stride, steps, stride), steps]:
        m = metrics(job, step, steps)
        valid = ",".join(str(m.get(key, "")) for key in _VALID)
        rows.append(f"{step},{m['train_loss']},{m['train_mean_token_accuracy']},{valid}")
    return ("\n".join(rows) + "\n").encode()


def fine_tuned_model_id(job: JobRec) -> str:
    if job.model_name:  # named by its dialect at creation (``nebius_jobs``)
        return job.model_name
    if job.training_type:  # created under Azure's rules: <base>.ft-<hex>[-<suffix>]
        return f"{job.root_model}.ft-{job.model_key}" + (f"-{job.suffix}" if job.suffix else "")
    return f"ft:{job.root_model}:{job.org_slug}:{job.suffix or ''}:{job.model_key}"


def _checkpoint_steps(job: JobRec) -> list[int]:
    epochs = int(job.resolved["n_epochs"])
    return [steps_per_epoch(job) * k for k in range(max(1, epochs - 2), epochs + 1)]


# views -----------------------------------------------------------------------------------------
def events(job: JobRec, now: float) -> list[Event]:
    """Events that have happened by ``now``, oldest first."""
    span, reached = job.duration, effective(job, now)
    files = f"Validating training file: {job.training_file}"
    if job.validation_file:
        files += f" and validation file: {job.validation_file}"
    plan: list[tuple[float, Event]] = [
        (0.0, Event("created", 0, "info", f"Created fine-tuning job: {job.id}")),
        (0.0, Event("validating", 0, "info", files)),
    ]
    if job.failure:
        plan.append((VALIDATED * span, Event("failed", 0, "error", job.failure["message"])))
    else:
        plan.append(
            (
                VALIDATED * span,
                Event("validated", 0, "info", "Files validated, moving job to queued state"),
            )
        )
        plan.append((STARTED * span, Event("started", 0, "info", "Fine-tuning job started")))
        steps = total_steps(job)
        sampled = sorted(
            {max(1, steps * i // _METRIC_EVENTS) for i in range(1, _METRIC_EVENTS + 1)}
        )
        checkpoints = set(_checkpoint_steps(job))
        for step in sorted(set(sampled) | checkpoints):
            at = _step_progress(job, step)
            if step in sampled:
                m = metrics(job, step)
                message = f"Step {step}/{steps}: training loss={m['train_loss']:.2f}"
                data = {
                    "step": step,
                    "train_loss": m["train_loss"],
                    "train_mean_token_accuracy": m["train_mean_token_accuracy"],
                    **{key: m[key] for key in _VALID if key in m},
                    "total_steps": steps,
                }
                plan.append((at, Event(f"step-{step}", 0, "info", message, "metrics", data)))
            if step in checkpoints:
                text = f"Checkpoint created at step {step}"
                plan.append((at, Event(f"ckpt-{step}", 0, "info", text)))
        model = fine_tuned_model_id(job)
        plan.append((span, Event("model", 0, "info", f"New fine-tuned model created: {model}")))
        plan.append((span, Event("done", 0, "info", "The job has successfully completed")))
    seen = [
        Event(e.key, wall(job, at), e.level, e.message, e.type, e.data)
        for at, e in plan
        if at <= reached
    ]
    for index, (_, start, end) in enumerate(job.pauses):
        seen.append(Event(f"pause-{index}", start, "info", "Fine-tuning job paused"))
        if end is not None:
            seen.append(Event(f"resume-{index}", end, "info", "Fine-tuning job resumed"))
    if job.cancelled_at is not None:
        seen.append(Event("cancelled", job.cancelled_at, "info", "Fine-tuning job cancelled"))
    return sorted(seen, key=lambda e: e.wall)


def event_json(job: JobRec, event: Event) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "fine_tuning.job.event",
        "id": stable_id("ftevent-", job.id, event.key),
        "created_at": int(event.wall),
        "level": event.level,
        "message": event.message,
        "type": event.type,
    }
    if event.data is not None:
        body["data"] = event.data
    return body


def checkpoints(job: JobRec, now: float) -> list[dict[str, Any]]:
    """Checkpoints written by ``now``, oldest first."""
    if job.failure:
        return []
    reached = effective(job, now)
    base = fine_tuned_model_id(job)
    found = []
    for step in _checkpoint_steps(job):
        at = _step_progress(job, step)
        if at > reached:
            break
        m: dict[str, Any] = metrics(job, step)
        if job.validation_file:  # the full validation set is scored at each checkpoint
            m["full_valid_loss"] = m["valid_loss"]
            m["full_valid_mean_token_accuracy"] = m["valid_mean_token_accuracy"]
        found.append(
            {
                "object": "fine_tuning.job.checkpoint",
                "id": stable_id("ftckpt_", job.id, step),
                "created_at": int(wall(job, at)),
                "fine_tuned_model_checkpoint": f"{base}:ckpt-step-{step}",
                "fine_tuning_job_id": job.id,
                "step_number": step,
                "metrics": m,
            }
        )
    return found


def job_json(job: JobRec, now: float, *, initial: bool = False) -> dict[str, Any]:
    """The ``fine_tuning.job`` object; ``initial`` renders it as the create call returns it."""
    state = "validating_files" if initial else status(job, now)
    validated = (
        not initial and job.failure is None and effective(job, now) >= VALIDATED * job.duration
    )
    shown = job.resolved if validated else job.hyperparameters
    method: dict[str, Any] = {"hyperparameters": shown}
    if job.grader is not None:
        method["grader"] = job.grader
    keys = ("batch_size", "learning_rate_multiplier", "n_epochs")
    return {
        "object": "fine_tuning.job",
        "id": job.id,
        "model": job.model,
        "created_at": int(job.created_at),
        "finished_at": job.finished_at,
        "fine_tuned_model": job.fine_tuned_model,
        "organization_id": job.organization_id,
        "result_files": list(job.result_files),
        "status": state,
        "validation_file": job.validation_file,
        "training_file": job.training_file,
        "hyperparameters": {k: shown[k] for k in keys if k in shown},
        "trained_tokens": job.trained_tokens,
        "error": job.failure if state == "failed" else None,
        "user_provided_suffix": job.suffix,
        "seed": job.seed,
        "estimated_finish": int(wall(job, job.duration)) if state == "running" else None,
        "integrations": job.integrations,
        "metadata": job.metadata,
        "method": {"type": job.method_type, job.method_type: method},
    }
