"""Together AI's fine-tuning jobs (``/v1/fine-tunes``), model limits, price estimates and chat
completions of the models the jobs make, on the emulator's job records and timeline.

What ``Together().fine_tuning.create`` sends (SDK 3.1.1): ``GET /v1/fine-tunes/models/limits
?model_name=``, then ``POST /v1/fine-tunes/estimate-price``, then ``POST /v1/fine-tunes`` with
``FinetuneRequest.model_dump(exclude_none=True)`` (``validation_file`` is ``""`` when not given).
Statuses are Together's, from the timeline's: validating files is ``pending``; the last tenth
of training is ``compressing`` then ``uploading``; success is ``completed``; a malformed or
empty training file ends in ``user_error``; a cancel answers ``cancel_requested`` and the job
reads ``cancelled`` after. Defaults as the docs give them: LoRA when ``training_type`` is
absent, ``batch_size: "max"`` the base's largest.

Could not be confirmed, and chosen here: the limits of each base in ``BASES`` (the emulator's
own figures), the output name ``<user>/<base name>-<suffix>-<8 hex>`` (the form of the names in
Together's docs examples), that unknown request keys are refused (400), the order of
listings (jobs newest first, events oldest first, no pagination: the SDK sends no cursor), that
deleting or cancelling a finished job is a 400, and the price (a flat rate per 1M tokens).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request

from ftops.emulator import chat, datafile, jobs, timeline
from ftops.emulator.common import ApiError, Ctx, Reply, invalid, json_body, required, typed
from ftops.emulator.files import live_file
from ftops.emulator.store import JobRec, Store

USER = "emulator"  # the account's user name, the first segment of output model names
# base -> (max LoRA rank, min batch, max batch, max DPO batch, max seq length, full training)
BASES: dict[str, tuple[int, int, int, int, int, bool]] = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference": (64, 8, 128, 64, 131072, True),
    "meta-llama/Llama-3.3-70B-Instruct-Reference": (64, 8, 64, 32, 131072, True),
    "Qwen/Qwen3-8B": (64, 8, 128, 64, 32768, True),
    "openai/gpt-oss-20b": (32, 8, 64, 32, 32768, False),
}
PRICE_PER_M = 0.48  # USD per 1M training tokens (the emulator's flat rate)
MAX_EPOCHS, MAX_CHECKPOINTS, MAX_EVALS = 20, 20, 100
LEARNING_RATE = (1e-8, 0.01)
_CREATE_KEYS = (
    "training_file", "validation_file", "packing", "model", "n_epochs", "learning_rate",
    "lr_scheduler", "warmup_ratio", "max_grad_norm", "weight_decay", "n_checkpoints", "n_evals",
    "max_seq_length", "batch_size", "gradient_accumulation_steps", "suffix", "wandb_key",
    "wandb_base_url", "wandb_project_name", "wandb_name", "wandb_entity", "random_seed",
    "early_stopping_enabled", "early_stopping_patience", "early_stopping_min_delta",
    "early_stopping_warmup_evals", "training_type", "training_method", "from_checkpoint",
    "multimodal_params", "from_hf_model", "hf_model_revision", "hf_api_token",
    "hf_output_repo_name",
)  # fmt: skip
_ESTIMATE_KEYS = ("training_file", "from_checkpoint", "model", "n_epochs", "n_evals",
                  "training_method", "training_type", "validation_file")
_METHODS = {"sft": "supervised", "dpo": "dpo"}
_EVENTS = {"created": "job_pending", "validating": "training_data_downloading",
           "validated": "training_data_download_complete", "started": "training_start",
           "model": "model_upload_complete", "done": "job_complete", "failed": "job_error",
           "cancelled": "cancel_requested"}


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _job(ctx: Ctx, job_id: str) -> JobRec:
    job = ctx.store.jobs.get(job_id)
    if job is None or not job.id.startswith("ft-"):
        raise ApiError(404, f"Fine-tune job {job_id} not found", param="id",
                       code="fine_tune_not_found")
    return job


def _parent(ctx: Ctx, name: str) -> JobRec | None:
    """The completed job a ``from_checkpoint`` (job id or output name, ``:step`` optional)
    names."""
    key = name.split(":")[0]
    return next((j for j in ctx.store.jobs.values() if j.id.startswith("ft-")
                 and (j.id == key or j.model_name == key) and j.final_status == "succeeded"),
                None)


def _base(ctx: Ctx, name: str, param: str) -> str:
    parent = _parent(ctx, name)
    if parent is not None:
        return parent.root_model
    if name not in BASES:
        raise ApiError(404, f"Model {name} is not available for fine-tuning.", param=param,
                       code="model_not_available")
    return name


# limits and price ------------------------------------------------------------------------------
def model_limits(ctx: Ctx, request: Request) -> Reply:
    name = request.args.get("model_name", "")
    rank, low, high, dpo, seq, full = BASES[_base(ctx, name, "model_name")]
    batches = {"max_batch_size": high, "max_batch_size_dpo": dpo, "min_batch_size": low}
    return Reply({
        "model_name": name, "default_gradient_accumulation_steps": 1,
        "lora_training": {"default_rank": rank, "max_rank": rank,
                          "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], **batches},
        "full_training": batches if full else None, "supports_full_training": full,
        "max_learning_rate": LEARNING_RATE[1], "min_learning_rate": LEARNING_RATE[0],
        "max_num_checkpoints": MAX_CHECKPOINTS, "max_num_epochs": MAX_EPOCHS,
        "max_num_evals": MAX_EVALS, "max_seq_length_sft": seq, "max_seq_length_dpo": seq,
        "min_max_seq_length": 512, "merge_output_lora": True, "supports_reasoning": False,
        "supports_tools": True, "supports_vision": False,
    })


def _fine_tune_file(ctx: Ctx, file_id: str, param: str) -> Path:
    rec = live_file(ctx, file_id)
    if rec is None or rec.purpose != "fine-tune":
        raise invalid(f"{param}: no fine-tune file {file_id}", param, "invalid_file")
    return ctx.store.blob_path(file_id)


def estimate_price(ctx: Ctx, request: Request) -> Reply:
    body = json_body(request, _ESTIMATE_KEYS)
    path = _fine_tune_file(ctx, required(body, "training_file", str), "training_file")
    base = _base(ctx, typed(body, "model", str) or typed(body, "from_checkpoint", str) or "",
                 "model")
    method = (typed(body, "training_method", dict) or {}).get("method", "sft")
    epochs = typed(body, "n_epochs", int) or 1
    tokens = timeline.billable_tokens(path, _METHODS.get(method, "supervised"), base) * epochs
    return Reply({"estimation_available": True, "allowed_to_proceed": True,
                  "estimated_train_token_count": tokens, "estimated_eval_token_count": 0,
                  "estimated_total_price": round(tokens / 1e6 * PRICE_PER_M, 6),
                  "user_limit": 1000.0})


# create ----------------------------------------------------------------------------------------
def _number(body: dict[str, Any], key: str, low: float, high: float, integer: bool) -> Any:
    value = typed(body, key, int if integer else (int, float))  # type: ignore[arg-type]
    if value is not None and not low <= value <= high:
        raise invalid(f"Invalid '{key}': {value!r} is outside [{low}, {high}].", key,
                      "invalid_value")
    return value


def _training_type(body: dict[str, Any], base: str) -> dict[str, Any]:
    rank, *_, full = BASES[base]
    given = typed(body, "training_type", dict)
    if given is None:  # LoRA by default (the SDK's comment on ``lora=None``)
        return {"type": "Lora", "lora_r": rank, "lora_alpha": rank * 2, "lora_dropout": 0.0,
                "lora_trainable_modules": "all-linear"}
    kind = given.get("type")
    if kind == "Full" and full:
        return {"type": "Full"}
    if kind != "Lora":
        raise invalid(f"Invalid 'training_type.type': {kind!r} for {base}.",
                      "training_type.type", "invalid_value")
    lora_r = required(given, "lora_r", int, "training_type.")
    if not 1 <= lora_r <= rank:
        raise invalid(f"Invalid 'training_type.lora_r': at most {rank}.",
                      "training_type.lora_r", "invalid_value")
    return {"lora_alpha": lora_r * 2, "lora_dropout": 0.0,
            "lora_trainable_modules": "all-linear", **given}


def _method(body: dict[str, Any]) -> dict[str, Any]:
    method = typed(body, "training_method", dict) or {"method": "sft", "train_on_inputs": "auto"}
    if method.get("method") not in _METHODS:
        raise invalid("Invalid 'training_method.method': expected sft or dpo.",
                      "training_method.method", "invalid_value")
    return dict(method)


def _failure(path: Path, method: str) -> dict[str, str] | None:
    check = datafile.check(path, method)
    problem = check.problem or ("the file has no examples" if not check.examples else None)
    if problem is None:
        return None
    return {"code": "invalid_training_file", "param": "training_file",
            "message": f"Training file has an invalid format: {problem}."}


def _suffix(body: dict[str, Any]) -> str | None:
    suffix: str | None = typed(body, "suffix", str)
    if suffix is not None and not (1 <= len(suffix) <= 40
                                   and all(c.isalnum() or c in "-_" for c in suffix)):
        raise invalid("Invalid 'suffix': use 1 to 40 letters, digits, '-' and '_'.", "suffix",
                      "invalid_value")
    return suffix


def _settings(ctx: Ctx, body: dict[str, Any], base: str, method: str) -> dict[str, Any]:
    """The hyperparameters as the job shows them (wire names), every one checked."""
    _, low, high, dpo, seq, _ = BASES[base]
    batch = body.get("batch_size", "max")
    top = dpo if method == "dpo" else high
    if batch != "max" and not (isinstance(batch, int) and not isinstance(batch, bool)
                               and low <= batch <= top):
        raise invalid(f"Invalid 'batch_size': {batch!r}; expected 'max' or {low} to {top}.",
                      "batch_size", "invalid_value")
    seed = _number(body, "random_seed", 0, 2**31 - 1, True)
    return {
        "n_epochs": _number(body, "n_epochs", 1, MAX_EPOCHS, True) or 1,
        "batch_size": batch,
        "learning_rate": _number(body, "learning_rate", *LEARNING_RATE, False) or 1e-5,
        "n_checkpoints": _number(body, "n_checkpoints", 1, MAX_CHECKPOINTS, True) or 1,
        "n_evals": _number(body, "n_evals", 0, MAX_EVALS, True) or 0,
        "warmup_ratio": _number(body, "warmup_ratio", 0, 1, False) or 0.0,
        "max_grad_norm": _number(body, "max_grad_norm", 0, 1e6, False) or 1.0,
        "weight_decay": _number(body, "weight_decay", 0, 1e6, False) or 0.0,
        "max_seq_length": _number(body, "max_seq_length", 512, seq, True),
        "packing": typed(body, "packing", bool) is not False,
        "lr_scheduler": typed(body, "lr_scheduler", dict) or {
            "lr_scheduler_type": "cosine",
            "lr_scheduler_args": {"min_lr_ratio": 0.0, "num_cycles": 0.5}},
        "random_seed": seed if seed is not None else ctx.store.random_int(2**31),
        "training_type": _training_type(body, base),
        "training_method": _method(body),
    }


def create_job(ctx: Ctx, request: Request) -> Reply:
    body = json_body(request, _CREATE_KEYS)
    model, start = typed(body, "model", str), typed(body, "from_checkpoint", str)
    if (model is None) == (start is None):
        raise invalid("Specify either 'model' or 'from_checkpoint'.", "model")
    base = _base(ctx, model or start or "", "model" if model else "from_checkpoint")
    training = _fine_tune_file(ctx, required(body, "training_file", str), "training_file")
    validation = typed(body, "validation_file", str) or None
    if validation is not None:
        _fine_tune_file(ctx, validation, "validation_file")
    suffix = _suffix(body)
    method_key = (typed(body, "training_method", dict) or {}).get("method", "sft")
    settings = _settings(ctx, body, base, method_key)
    method = _METHODS[settings["training_method"]["method"]]
    check = datafile.check(training, method)
    batch = settings["batch_size"]
    resolved = {**settings, "batch_size": BASES[base][3 if method == "dpo" else 2]
                if batch == "max" else batch}
    parent = _parent(ctx, start) if start else None
    hexed = ctx.store.new_hex()
    name = f"{USER}/{base.split('/')[-1]}" + (f"-{suffix}" if suffix else "") + f"-{hexed[:8]}"
    job = JobRec(
        id=f"ft-{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}",
        created_at=ctx.now, duration=ctx.job_seconds,
        model=(parent.model_name or base) if parent else base, root_model=base,
        model_key=hexed[:8], organization_id=ctx.org_id, org_slug=USER,
        training_file=training.name, validation_file=validation, method_type=method,
        hyperparameters=settings, resolved=resolved, grader=None, suffix=suffix,
        seed=settings["random_seed"], metadata=None, integrations=None,
        examples=check.examples, tokens_per_epoch=timeline.billable_tokens(training, method, base),
        failure=_failure(training, method), model_name=name)
    ctx.store.put_job(job)
    ctx.store.keep_blob(job.training_file, chat.training_blob(job.id))
    jobs.schedule(ctx.store, job)
    return Reply(job_json(job, ctx.now, shown="pending"))


# read ------------------------------------------------------------------------------------------
def status(job: JobRec, now: float) -> str:
    state = timeline.status(job, now)
    if state == "running":
        progress = timeline.effective(job, now) / job.duration if job.duration else 1.0
        return "running" if progress < 0.9 else "compressing" if progress < 0.95 else "uploading"
    return {"validating_files": "pending", "succeeded": "completed",
            "failed": "user_error"}.get(state, state)


def job_json(job: JobRec, now: float, *, shown: str | None = None) -> dict[str, Any]:
    state = shown or status(job, now)
    settings = job.hyperparameters
    done = state == "completed"
    steps = timeline.total_steps(job)
    return {
        "id": job.id, "object": "finetune", "status": state, "user_id": USER,
        "owner_address": USER, "created_at": _iso(job.created_at),
        "updated_at": _iso(job.finished_at or job.created_at),
        "started_at": _iso(timeline.wall(job, timeline.STARTED * job.duration)),
        "model": job.model, "model_output_name": job.model_name,
        "adapter_output_name": None, "training_file": job.training_file,
        "validation_file": job.validation_file or "", "suffix": job.suffix,
        **{k: settings[k] for k in ("n_epochs", "learning_rate", "n_checkpoints", "n_evals",
                                    "warmup_ratio", "max_grad_norm", "weight_decay", "packing",
                                    "lr_scheduler", "training_type", "training_method",
                                    "random_seed", "max_seq_length")},
        "batch_size": job.resolved["batch_size"],
        "from_checkpoint": job.model if job.model != job.root_model else None,
        "token_count": job.trained_tokens if done else None,
        "total_steps": steps, "steps_completed": steps if done else 0,
        "epochs_completed": int(job.resolved["n_epochs"]) if done else 0,
        "queue_depth": 0, "events": [],
        "train_on_inputs": settings["training_method"].get("train_on_inputs"),
        "TrainingFileNumLines": job.examples,
        "error": job.failure["message"] if job.failure and state == "user_error" else None,
    }


def list_jobs(ctx: Ctx, request: Request) -> Reply:
    found = [ctx.store.jobs[i] for i in reversed(ctx.store.job_order) if i.startswith("ft-")]
    return Reply({"object": "list", "data": [job_json(j, ctx.now) for j in found]})


def retrieve_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    return Reply(job_json(_job(ctx, job_id), ctx.now))


def list_events(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    data = []
    for event in timeline.events(job, ctx.now):
        kind = "checkpoint_save" if event.key.startswith("ckpt-") else _EVENTS.get(event.key)
        if kind is None:  # the timeline's metric steps: Together reports them as metrics
            continue
        data.append({"object": "fine-tune-event", "created_at": _iso(event.wall),
                     "level": event.level, "message": event.message, "type": kind,
                     "hash": hashlib.sha256(f"{job.id}:{event.key}".encode()).hexdigest()[:16]})
    return Reply({"object": "list", "data": data})


def list_checkpoints(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    found = timeline.checkpoints(job, ctx.now)
    final = timeline.total_steps(job)
    data = [{"checkpoint_type": "Final" if c["step_number"] == final else
             f"Intermediate (step {c['step_number']})", "created_at": _iso(c["created_at"]),
             "path": f"{job.model_name}:{c['step_number']}", "step": c["step_number"],
             "checkpoint": "adapter", "object_name": f"{job.model_name}-step-{c['step_number']}"}
            for c in reversed(found)]
    return Reply({"object": "list", "data": data})


# changes ---------------------------------------------------------------------------------------
def cancel_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    if status(job, ctx.now) in ("completed", "cancelled", "error", "user_error"):
        raise invalid(f"Fine-tune job {job_id} cannot be cancelled: it is "
                      f"{status(job, ctx.now)}.", "id", "invalid_state")
    job = replace(job, cancelled_at=ctx.now, final_status="cancelled", finished_at=int(ctx.now))
    ctx.store.put_job(job)
    return Reply(job_json(job, ctx.now, shown="cancel_requested"))


def delete_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    """Deletes a finished job and the model it made."""
    job = _job(ctx, job_id)
    if job.final_status is None:
        raise invalid(f"Fine-tune job {job_id} is still running: cancel it first.", "id",
                      "invalid_state")
    forget_job(ctx.store, job)
    return Reply({"message": f"Fine-tune job {job_id} deleted"})


def forget_job(store: Store, job: JobRec) -> None:
    store.put_job(job)  # marks the state changed, for the commit after this request
    if job.model_name in store.models:
        store.drop_model(job.model_name or "")
    del store.jobs[job.id]
    store.job_order.remove(job.id)
    store.job_index.clear()
    store.job_index.update((i, n) for n, i in enumerate(store.job_order))
    store.due[:] = [d for d in store.due if d[1] != job.id]
    store.drop_blob(chat.training_blob(job.id))


Handler = Callable[..., Reply]
ROUTES: tuple[tuple[str, str, Handler, bool], ...] = (
    ("GET", "/fine-tunes/models/limits", model_limits, False),
    ("POST", "/fine-tunes/estimate-price", estimate_price, False),
    ("POST", "/fine-tunes", create_job, True),
    ("GET", "/fine-tunes", list_jobs, False),
    ("GET", "/fine-tunes/<job_id>", retrieve_job, False),
    ("DELETE", "/fine-tunes/<job_id>", delete_job, False),
    ("POST", "/fine-tunes/<job_id>/cancel", cancel_job, False),
    ("GET", "/fine-tunes/<job_id>/events", list_events, False),
    ("GET", "/fine-tunes/<job_id>/checkpoints", list_checkpoints, False),
)
