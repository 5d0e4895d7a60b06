"""Fine-tuning job endpoints and the settling of jobs that reached their terminal state."""

from __future__ import annotations

import heapq
from dataclasses import replace
from typing import Any

from werkzeug.wrappers import Request

from ftops import catalog
from ftops.emulator import datafile, timeline
from ftops.emulator.chat import training_blob
from ftops.emulator.common import (
    ApiError,
    Ctx,
    Reply,
    invalid,
    json_body,
    page_after,
    query_limit,
    required,
    typed,
)
from ftops.emulator.files import add_file, live_file
from ftops.emulator.store import JobRec, ModelRec, Store

METHODS = ("supervised", "dpo", "reinforcement")
_CREATE_KEYS = (
    "model",
    "training_file",
    "validation_file",
    "method",
    "hyperparameters",
    "suffix",
    "seed",
    "metadata",
    "integrations",
)
# name -> (integer?, minimum, maximum, minimum excluded?)
_NUMBERS: dict[str, tuple[bool, float, float | None, bool]] = {
    "batch_size": (True, 1, 256, False),
    "learning_rate_multiplier": (False, 0, None, True),
    "n_epochs": (True, 1, 50, False),
    "beta": (False, 0, 2, True),
    "compute_multiplier": (False, 0.00001, 10, True),
    "eval_interval": (True, 1, None, False),
    "eval_samples": (True, 1, None, False),
}
_HYPERPARAMETERS = {
    "supervised": ("batch_size", "learning_rate_multiplier", "n_epochs"),
    "dpo": ("batch_size", "learning_rate_multiplier", "n_epochs", "beta"),
    "reinforcement": (
        "batch_size",
        "learning_rate_multiplier",
        "n_epochs",
        "compute_multiplier",
        "eval_interval",
        "eval_samples",
        "reasoning_effort",
    ),
}
_EFFORTS = ("default", "low", "medium", "high")
_GRADERS = ("string_check", "text_similarity", "python", "score_model", "multi")


# settling --------------------------------------------------------------------------------------
def schedule(store: Store, job: JobRec) -> None:
    when = timeline.due(job)
    if when is not None:
        heapq.heappush(store.due, (when, job.id))


def settle(ctx: Ctx) -> None:
    """Finalises every job whose terminal time has passed: model, result file, counters."""
    while ctx.store.due and ctx.store.due[0][0] <= ctx.now:
        _, job_id = heapq.heappop(ctx.store.due)
        job = ctx.store.jobs[job_id]
        when = timeline.due(job)
        if when is None or when > ctx.now:  # stale entry: the job was paused or cancelled
            continue
        if job.failure:
            ctx.store.put_job(replace(job, final_status="failed", finished_at=int(when)))
            continue
        results = add_file(
            replace(ctx, now=when),
            chunks=iter([timeline.results_csv(job)]),
            filename="step_metrics.csv",
            purpose="fine-tune-results",
        )
        model_id = timeline.fine_tuned_model_id(job)
        ctx.store.put_model(ModelRec(model_id, int(when), job.organization_id))
        finished = replace(
            job,
            final_status="succeeded",
            finished_at=int(when),
            fine_tuned_model=model_id,
            trained_tokens=job.tokens_per_epoch * int(job.resolved["n_epochs"]),
            result_files=(results.id,),
        )
        ctx.store.put_job(finished)


# create ----------------------------------------------------------------------------------------
def _base_model(ctx: Ctx, model: str) -> tuple[str, catalog.ModelInfo]:
    """(the model id the job reports, the catalog entry of its root base model)."""
    info = catalog.load().model(model)
    known = model in ctx.store.models if model.startswith("ft:") else info is not None
    if not known or info is None:
        raise invalid(
            f"Model {model} is not available for fine-tuning or does not exist.",
            "model",
            "model_not_available",
        )
    return (model if model.startswith("ft:") else info.id), info


def _hyperparameters(given: dict[str, Any], method: str, where: str) -> dict[str, Any]:
    names = _HYPERPARAMETERS[method]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise invalid(f"Unknown hyperparameter '{where}{unknown[0]}'.", f"{where}{unknown[0]}")
    result: dict[str, Any] = {}
    for name in names:
        value = given.get(name, "default" if name == "reasoning_effort" else "auto")
        if name == "reasoning_effort":
            ok = value in _EFFORTS
        elif value == "auto":
            ok = True
        else:
            integer, low, high, open_low = _NUMBERS[name]
            kind = int if integer else (int, float)
            ok = (
                isinstance(value, kind)
                and not isinstance(value, bool)
                and (value > low if open_low else value >= low)
                and (high is None or value <= high)
            )
        if not ok:
            raise invalid(
                f"Invalid value for '{where}{name}': {value!r}.", f"{where}{name}", "invalid_value"
            )
        result[name] = value
    return result


def _method(
    body: dict[str, Any], info: catalog.ModelInfo, model: str
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """(method type, requested hyperparameters with defaults, grader) from the request."""
    top = typed(body, "hyperparameters", dict)
    method = typed(body, "method", dict)
    block: dict[str, Any] = {}
    method_type = "supervised"
    if method is not None:
        unknown = sorted(set(method) - {"type", *METHODS})
        if unknown:
            raise invalid(f"Unrecognized argument 'method.{unknown[0]}'.", f"method.{unknown[0]}")
        method_type = required(method, "type", str, "method.")
        if method_type not in METHODS:
            raise invalid(
                f"Invalid 'method.type': {method_type!r}; expected one of {', '.join(METHODS)}.",
                "method.type",
                "invalid_value",
            )
        stray = [k for k in METHODS if k != method_type and method.get(k) is not None]
        if stray:
            raise invalid(f"'method.{stray[0]}' does not match method.type.", f"method.{stray[0]}")
        block = typed(method, method_type, dict, "method.") or {}
    if method_type not in info.methods:
        raise invalid(
            f"Model {model} does not support the {method_type} fine-tuning method.",
            "method.type" if method is not None else "model",
            "invalid_method",
        )
    where = f"method.{method_type}."
    allowed = (
        {"hyperparameters", "grader"} if method_type == "reinforcement" else {"hyperparameters"}
    )
    unknown = sorted(set(block) - allowed)
    if unknown:
        raise invalid(f"Unrecognized argument '{where}{unknown[0]}'.", f"{where}{unknown[0]}")
    inner = typed(block, "hyperparameters", dict, where)
    if top is not None and inner is not None:
        raise invalid(
            "Pass hyperparameters either at the top level or under method, not both.",
            "hyperparameters",
        )
    if inner is not None:
        hyperparameters = _hyperparameters(inner, method_type, f"{where}hyperparameters.")
    else:
        hyperparameters = _hyperparameters(top or {}, method_type, "hyperparameters.")
    grader = None
    if method_type == "reinforcement":
        grader = required(block, "grader", dict, where)
        if grader.get("type") not in _GRADERS:
            raise invalid(f"Invalid '{where}grader.type'.", f"{where}grader.type", "invalid_value")
    return method_type, hyperparameters, grader


def _suffix(body: dict[str, Any]) -> str | None:
    suffix = typed(body, "suffix", str)
    if suffix is not None and (
        not 1 <= len(suffix) <= 64 or ":" in suffix or any(c.isspace() for c in suffix)
    ):
        raise invalid(
            "Invalid 'suffix': use 1 to 64 characters without ':' or spaces.",
            "suffix",
            "invalid_value",
        )
    return suffix


def _metadata(body: dict[str, Any]) -> dict[str, str] | None:
    metadata = typed(body, "metadata", dict)
    if metadata is None:
        return None
    if len(metadata) > 16 or not all(
        isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
        for k, v in metadata.items()
    ):
        raise invalid(
            "Invalid 'metadata': at most 16 string pairs, keys up to 64 and values up to 512 "
            "characters.",
            "metadata",
            "invalid_value",
        )
    return metadata


def _integrations(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    integrations = typed(body, "integrations", list)
    if integrations is None:
        return None
    for index, item in enumerate(integrations):
        wandb = item.get("wandb") if isinstance(item, dict) else None
        if (
            index >= 5
            or not isinstance(item, dict)
            or item.get("type") != "wandb"
            or not isinstance(wandb, dict)
            or not isinstance(wandb.get("project"), str)
        ):
            raise invalid(
                "Invalid 'integrations': at most 5 items of {type: 'wandb', wandb: {project}}.",
                f"integrations[{index}]",
                "invalid_value",
            )
    return integrations


def _seed(ctx: Ctx, body: dict[str, Any]) -> int:
    seed = typed(body, "seed", int)
    if seed is None:
        return ctx.store.random_int(2**31)
    if not 0 <= seed <= 2_147_483_647:
        raise invalid("Invalid 'seed': expected 0 to 2147483647.", "seed", "invalid_value")
    return int(seed)


def _fine_tune_file(ctx: Ctx, file_id: str, param: str) -> None:
    rec = live_file(ctx, file_id)
    if rec is None:
        raise invalid(f"invalid {param}: no such file {file_id}", param, f"invalid_{param}")
    if rec.purpose != "fine-tune":
        raise invalid(
            f"invalid {param}: file {file_id} has purpose '{rec.purpose}', not 'fine-tune'",
            param,
            f"invalid_{param}",
        )


def create_job(ctx: Ctx, request: Request) -> Reply:
    body = json_body(request, _CREATE_KEYS)
    requested = required(body, "model", str)
    training = required(body, "training_file", str)
    validation = typed(body, "validation_file", str)
    model, info = _base_model(ctx, requested)
    method_type, hyperparameters, grader = _method(body, info, requested)
    suffix, metadata, integrations = _suffix(body), _metadata(body), _integrations(body)
    seed = _seed(ctx, body)
    _fine_tune_file(ctx, training, "training_file")
    if validation is not None:
        _fine_tune_file(ctx, validation, "validation_file")

    failure = None
    train = datafile.check(ctx.store.blob_path(training), method_type)
    if train.problem:
        failure = {
            "code": "invalid_training_file",
            "message": f"Training file {training} has an invalid format: {train.problem}.",
            "param": "training_file",
        }
    elif validation is not None:
        valid = datafile.check(ctx.store.blob_path(validation), method_type)
        if valid.problem:
            failure = {
                "code": "invalid_validation_file",
                "message": f"Validation file {validation} has an invalid format: {valid.problem}.",
                "param": "validation_file",
            }
    job = JobRec(
        id=ctx.store.new_id("ftjob-"),
        created_at=ctx.now,
        duration=ctx.job_seconds,
        model=model,
        root_model=info.id,
        model_key=ctx.store.new_id("", 8),
        organization_id=ctx.org_id,
        org_slug=ctx.org_slug,
        training_file=training,
        validation_file=validation,
        method_type=method_type,
        hyperparameters=hyperparameters,
        resolved=timeline.resolve_hyperparameters(hyperparameters, method_type, train.examples),
        grader=grader,
        suffix=suffix,
        seed=seed,
        metadata=metadata,
        integrations=integrations,
        examples=train.examples,
        tokens_per_epoch=train.tokens,
        failure=failure,
    )
    ctx.store.put_job(job)
    ctx.store.keep_blob(training, training_blob(job.id))
    schedule(ctx.store, job)
    return Reply(timeline.job_json(job, ctx.now, initial=True))


# read ------------------------------------------------------------------------------------------
def _job(ctx: Ctx, job_id: str) -> JobRec:
    job = ctx.store.jobs.get(job_id)
    if job is None:
        raise ApiError(
            404,
            f"Could not find fine-tuning job: {job_id}",
            param="fine_tuning_job_id",
            code="fine_tuning_job_not_found",
        )
    return job


def _metadata_filter(request: Request) -> dict[str, str] | None:
    """``metadata[k]=v`` pairs; an empty dict means ``metadata=null`` (jobs without metadata)."""
    pairs = {
        key[len("metadata[") : -1]: value
        for key, value in request.args.items()
        if key.startswith("metadata[") and key.endswith("]")
    }
    plain = request.args.get("metadata")
    if plain is not None and (plain != "null" or pairs):
        raise invalid(
            "Invalid 'metadata' filter: use metadata[key]=value pairs, or metadata=null alone.",
            "metadata",
        )
    if plain == "null":
        return {}
    return pairs or None


def list_jobs(ctx: Ctx, request: Request) -> Reply:
    limit = query_limit(request, 20, 100)
    if not ctx.metadata_filter and any(k.startswith("metadata") for k in request.args):
        raise invalid("Unrecognized request argument supplied: metadata", "metadata")
    wanted = _metadata_filter(request)
    after = request.args.get("after")
    order = ctx.store.job_order
    position = len(order)
    if after:
        if after not in ctx.store.job_index:
            raise invalid(f"Invalid 'after': no fine-tuning job with id '{after}'.", "after")
        position = ctx.store.job_index[after]
    found: list[JobRec] = []
    # Newest first: walk back from the cursor and stop one past the page to learn has_more.
    for index in range(position - 1, -1, -1):
        job = ctx.store.jobs[order[index]]
        if wanted is not None:
            metadata = job.metadata or {}
            # All wanted pairs present; or, for metadata=null (empty filter), no metadata.
            if not (metadata.items() >= wanted.items() if wanted else not metadata):
                continue
        found.append(job)
        if len(found) > limit:
            break
    return Reply(
        {
            "object": "list",
            "data": [timeline.job_json(j, ctx.now) for j in found[:limit]],
            "has_more": len(found) > limit,
        }
    )


def retrieve_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    return Reply(timeline.job_json(_job(ctx, job_id), ctx.now))


def list_events(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    limit = query_limit(request, 20, 100)
    newest_first = [timeline.event_json(job, e) for e in reversed(timeline.events(job, ctx.now))]
    data, more = page_after(newest_first, lambda e: e["id"], request.args.get("after"), limit)
    return Reply({"object": "list", "data": data, "has_more": more})


def list_checkpoints(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    limit = query_limit(request, 10, 100)
    newest_first = list(reversed(timeline.checkpoints(job, ctx.now)))
    data, more = page_after(newest_first, lambda c: c["id"], request.args.get("after"), limit)
    return Reply(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }
    )


# state changes ---------------------------------------------------------------------------------
def _refuse(job: JobRec, action: str, status: str) -> ApiError:
    return invalid(f"Cannot {action} fine-tuning job {job.id}: its status is {status}.")


def cancel_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    status = timeline.status(job, ctx.now)
    if status in timeline.TERMINAL:
        raise _refuse(job, "cancel", status)
    pauses = job.pauses
    if timeline.is_paused(job):
        pauses = (*pauses[:-1], (pauses[-1][0], pauses[-1][1], ctx.now))
    job = replace(
        job,
        pauses=pauses,
        cancelled_at=ctx.now,
        final_status="cancelled",
        finished_at=int(ctx.now),
    )
    ctx.store.put_job(job)
    return Reply(timeline.job_json(job, ctx.now))


def pause_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    status = timeline.status(job, ctx.now)
    if status != "running":
        raise _refuse(job, "pause", status)
    job = replace(job, pauses=(*job.pauses, (timeline.effective(job, ctx.now), ctx.now, None)))
    ctx.store.put_job(job)
    return Reply(timeline.job_json(job, ctx.now))


def resume_job(ctx: Ctx, request: Request, job_id: str) -> Reply:
    job = _job(ctx, job_id)
    status = timeline.status(job, ctx.now)
    if status != "paused":
        raise _refuse(job, "resume", status)
    at, start, _ = job.pauses[-1]
    job = replace(job, pauses=(*job.pauses[:-1], (at, start, ctx.now)))
    ctx.store.put_job(job)
    schedule(ctx.store, job)
    return Reply(timeline.job_json(job, ctx.now))
