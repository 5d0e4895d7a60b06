"""Fireworks supervised fine-tuning jobs (``supervisedFineTuningJobs``) on the emulator's job
timeline (see ``fireworks`` for sources and what could not be confirmed).

A job is a ``JobRec`` keyed ``<account>.<job id>``; what was asked of it, with Fireworks'
defaults filled in, is kept camelCase under ``hyperparameters["fireworks"]`` and echoed back.
Its model is named at creation (``JobRec.model_name``): ``accounts/<account>/models/<output
model, or the job id>``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from typing import Any

from werkzeug.wrappers import Request

from ftops.emulator import chat, datafile, jobs, timeline
from ftops.emulator.common import Ctx, Reply
from ftops.emulator.fireworks_common import (
    FireworksError,
    account_of,
    check_id,
    invalid,
    json_body,
    key,
    not_found,
    page,
    rfc3339,
    split_key,
    typed,
)
from ftops.emulator.fireworks_data import BASES, base_name, dataset, producer
from ftops.emulator.store import JobRec

COLLECTION = "supervisedFineTuningJobs"
COLLECTIONS = {"supervised": COLLECTION, "dpo": "dpoJobs"}  # method -> its jobs' collection
# The create body's fields (``SupervisedFineTuningJobCreateParams``, SDK 1.2.30).
_FIELDS = (
    "dataset", "awsS3Config", "azureBlobStorageConfig", "baseModel", "batchSize",
    "batchSizeSamples", "samplerCheckpointSaveIntervalSteps", "displayName", "earlyStop",
    "epochs", "evalAutoCarveout", "evaluationDataset", "gradientAccumulationSteps", "isTurbo",
    "jinjaTemplate", "learningRate", "learningRateWarmupSteps", "loraRank", "maxContextLength",
    "metricsFileSignedUrl", "mtpEnabled", "mtpFreezeBaseModel", "mtpNumDraftTokens", "nodes",
    "optimizerWeightDecay", "outputModel", "rendererHuggingFaceRepoId", "region", "usePurpose",
    "reservationTarget", "useReservation", "wandbConfig", "warmStartFrom",
)  # fmt: skip
# What the emulator checks: name -> (integer?, minimum, maximum). Ranges the docs do not give
# are the emulator's own (see ``fireworks``).
NUMBERS: dict[str, tuple[bool, float, float]] = {
    "epochs": (True, 1, 100),
    "learningRate": (False, 1e-7, 1.0),
    "loraRank": (True, 4, 64),
    "maxContextLength": (True, 512, 131072),
    "batchSize": (True, 1, 1 << 22),
    "batchSizeSamples": (True, 1, 4096),
    "learningRateWarmupSteps": (True, 0, 100_000),
    "gradientAccumulationSteps": (True, 1, 1024),
    "optimizerWeightDecay": (False, 0.0, 1.0),
    "nodes": (True, 1, 8),
}
# Fireworks' documented defaults (fine-tuning guide): 1 epoch, learning rate 1e-4, LoRA rank 8;
# the context length defaults to 8192 here (not confirmed: the docs say "the model's default").
DEFAULTS: dict[str, Any] = {"epochs": 1, "learningRate": 0.0001, "loraRank": 8,
                            "maxContextLength": 8192, "earlyStop": False,
                            "evalAutoCarveout": False}
_STATES = {"validating_files": "JOB_STATE_VALIDATING", "queued": "JOB_STATE_PENDING",
           "running": "JOB_STATE_RUNNING", "succeeded": "JOB_STATE_COMPLETED",
           "failed": "JOB_STATE_FAILED", "cancelled": "JOB_STATE_CANCELLED",
           "paused": "JOB_STATE_PAUSED"}
_WRITING = 0.95  # the share of a job after which it is writing its model
_ID_CHARS = string.ascii_lowercase + string.digits


def job_name(job: JobRec) -> str:
    account, job_id = split_key(job.id)
    return f"accounts/{account}/{COLLECTIONS[job.method_type]}/{job_id}"


def numbers(body: dict[str, Any]) -> None:
    for name, (integer, low, high) in NUMBERS.items():
        value = body.get(name)
        if value is None:
            continue
        kind = int if integer else (int, float)
        if (not isinstance(value, kind) or isinstance(value, bool)
                or not low <= value <= high):
            what = "an integer" if integer else "a number"
            raise invalid(f"invalid {name} {value!r}: expected {what} from {low:g} to {high:g}")


def dataset_key(ctx: Ctx, account: str, name: object, field: str) -> str:
    prefix = f"accounts/{account}/datasets/"
    if not isinstance(name, str) or not name.startswith(prefix):
        raise invalid(f"invalid {field} {name!r}: expected \"{prefix}<dataset id>\"")
    rec = dataset(ctx, account, name[len(prefix):])
    if rec.expires_at is None:
        raise FireworksError("FAILED_PRECONDITION", f"Dataset \"{name}\" is not READY (state "
                             "UPLOADING): upload its file first")
    return rec.id


def base_of(ctx: Ctx, account: str, body: dict[str, Any]) -> tuple[str, str, str | None]:
    """(the model trained from as named, the root base's id, the parent's model name)."""
    base, warm = typed(body, "baseModel", str), typed(body, "warmStartFrom", str)
    if (base is None) == (warm is None):
        raise invalid("exactly one of base_model and warm_start_from must be specified")
    if base is not None:
        short = base.rsplit("/", 1)[-1]
        if base != base_name(short) or short not in BASES:
            raise FireworksError("NOT_FOUND", f"Model \"{base}\" not found or not tunable")
        return base, short, None
    parent = producer(ctx, str(warm))
    if not str(warm).startswith(f"accounts/{account}/models/") or warm not in ctx.store.models \
            or parent is None:
        raise FireworksError("NOT_FOUND", f"Model \"{warm}\" not found or not a PEFT addon")
    return str(warm), parent.root_model, str(warm)


def output_model(ctx: Ctx, account: str, body: dict[str, Any], job_id: str) -> str:
    given = typed(body, "outputModel", str) or job_id
    model_id = check_id(given.rsplit("/", 1)[-1], "output_model")
    name = f"accounts/{account}/models/{model_id}"
    if "/" in given and given != name:
        raise invalid(f"invalid output_model {given!r}: expected a model of account {account}")
    taken = name in ctx.store.models or any(
        j.fine_tuned_model == name or (j.model_name == name and j.final_status != "failed"
                                       and j.final_status != "cancelled")
        for j in ctx.store.jobs.values())
    if taken:
        raise FireworksError("ALREADY_EXISTS", f"Model \"{name}\" already exists")
    return name


def failure(ctx: Ctx, training: str, method: str = "supervised") -> tuple[
        datafile.DataCheck, dict[str, Any] | None]:
    check = datafile.check(ctx.store.blob_path(training), method)
    if check.problem:
        return check, {"code": "INVALID_ARGUMENT", "message": f"invalid dataset: {check.problem}"}
    if check.too_few:
        return check, {"code": "INVALID_ARGUMENT",
                       "message": f"the dataset has {check.examples} example(s); at least "
                                  f"{datafile.MIN_EXAMPLES} are required"}
    return check, None


def new_id(ctx: Ctx) -> str:
    """A job id from the account's seeded stream (reproducible runs): a letter, then 19 of
    ``_ID_CHARS``."""
    letters = [string.ascii_lowercase[ctx.store.random_int(26)]]
    letters += [_ID_CHARS[ctx.store.random_int(len(_ID_CHARS))] for _ in range(19)]
    return "".join(letters)


def create_job(ctx: Ctx, request: Request, account: str) -> Reply:
    account_of(account)
    unknown = sorted(set(request.args) - {"supervisedFineTuningJobId"})
    if unknown:
        raise invalid(f"unknown query parameter \"{unknown[0]}\"")
    body = json_body(request, _FIELDS)
    job_id = request.args.get("supervisedFineTuningJobId") or new_id(ctx)
    check_id(job_id, "supervised_fine_tuning_job_id")
    if key(account, job_id) in ctx.store.jobs:
        raise FireworksError("ALREADY_EXISTS", f"Job \"accounts/{account}/{COLLECTION}/{job_id}\""
                             " already exists")
    training = dataset_key(ctx, account, body.get("dataset"), "dataset")
    validation = None
    if body.get("evaluationDataset") is not None:
        validation = dataset_key(ctx, account, body["evaluationDataset"], "evaluation_dataset")
    model, root, _parent = base_of(ctx, account, body)
    numbers(body)
    if (body.get("maxContextLength") or 0) > BASES[root]:
        raise invalid(f"max_context_length {body['maxContextLength']} exceeds the context "
                      f"length {BASES[root]} of {root}")
    output = output_model(ctx, account, body, job_id)
    config = {**DEFAULTS, **{k: v for k, v in body.items() if v is not None},
              "outputModel": output}
    requested = {"n_epochs": config["epochs"],
                 "batch_size": config.get("batchSizeSamples", "auto"),
                 "learning_rate_multiplier": 1.0, "fireworks": config}
    job = start(ctx, Settled(account, job_id, model, root, training, validation, "supervised",
                             requested, output))
    return Reply(job_json(job, ctx.now, initial=True))


@dataclass(frozen=True)
class Settled:
    """A job as a create of either collection (supervised, dpo) settled it."""

    account: str
    job_id: str
    model: str
    root: str
    training: str
    validation: str | None
    method: str
    requested: dict[str, Any]
    output: str


def start(ctx: Ctx, made: Settled) -> JobRec:
    """The job stored, its training data kept and its run scheduled."""
    check, failed = failure(ctx, made.training, made.method)
    blob = ctx.store.blob_path(made.training)
    job = JobRec(
        id=key(made.account, made.job_id), created_at=ctx.now, duration=ctx.job_seconds,
        model=made.model, root_model=made.root, model_key=made.job_id,
        organization_id=made.account, org_slug=made.account, training_file=made.training,
        validation_file=made.validation, method_type=made.method,
        hyperparameters=made.requested,
        resolved=timeline.resolve_hyperparameters(made.requested, made.method, check.examples),
        grader=None, suffix=None, seed=0, metadata=None, integrations=None,
        examples=check.examples,
        tokens_per_epoch=timeline.billable_tokens(blob, made.method, made.root),
        failure=failed, model_name=made.output,
    )
    ctx.store.put_job(job)
    ctx.store.keep_blob(made.training, chat.training_blob(job.id))
    jobs.schedule(ctx.store, job)
    return job


def job_state(job: JobRec, now: float, initial: bool) -> str:
    if initial:
        return "JOB_STATE_CREATING"
    status = timeline.status(job, now)
    if status == "running" and timeline.effective(job, now) >= _WRITING * job.duration:
        return "JOB_STATE_WRITING_RESULTS"
    return _STATES.get(status, "JOB_STATE_UNSPECIFIED")


def outcome(job: JobRec, state: str) -> tuple[dict[str, str], float | None]:
    """A job's ``status`` in its state, and when it ended (None while it has not), as both
    collections show them."""
    status = {"code": "OK", "message": ""}
    if state == "JOB_STATE_FAILED" and job.failure:
        status = {"code": job.failure["code"], "message": job.failure["message"]}
    elif state == "JOB_STATE_CANCELLED":
        status = {"code": "CANCELLED", "message": "the job was cancelled"}
    done = job.finished_at if state in ("JOB_STATE_COMPLETED", "JOB_STATE_FAILED",
                                        "JOB_STATE_CANCELLED") else None
    return status, done


def job_json(job: JobRec, now: float, *, initial: bool = False) -> dict[str, Any]:
    account, _ = split_key(job.id)
    state = job_state(job, now, initial)
    config = dict(job.hyperparameters.get("fireworks", {}))
    status, done = outcome(job, state)
    reached = 0.0 if initial else timeline.effective(job, now)
    span = (1 - timeline.STARTED) * job.duration or 1.0
    percent = max(0, min(100, int(100 * (reached - timeline.STARTED * job.duration) / span)))
    body = {
        "name": job_name(job),
        "displayName": config.pop("displayName", ""),
        "createTime": rfc3339(job.created_at),
        "updateTime": rfc3339(done or now),
        "state": state,
        "status": status,
        "createdBy": f"emulator@{account}.fireworks.ai",
        **config,
        "jobProgress": {"percent": 100 if state == "JOB_STATE_COMPLETED" else percent,
                        "epoch": min(int(job.resolved["n_epochs"]) - 1,
                                     int(percent * int(job.resolved["n_epochs"]) / 100))},
    }
    if done is not None:
        body["completedTime"] = rfc3339(done)
    return body


def find(ctx: Ctx, account: str, job_id: str, method: str = "supervised") -> JobRec:
    """The job of the collection of ``method``'s jobs (each collection shows only its own)."""
    job = ctx.store.jobs.get(key(account_of(account), job_id))
    if job is None or job.method_type != method or "fireworks" not in job.hyperparameters:
        raise not_found("Job", f"accounts/{account}/{COLLECTIONS[method]}/{job_id}")
    return job


def list_jobs(ctx: Ctx, request: Request, account: str) -> Reply:
    account_of(account)
    mine = [ctx.store.jobs[j] for j in ctx.store.job_order
            if split_key(j)[0] == account and "fireworks" in ctx.store.jobs[j].hyperparameters
            and ctx.store.jobs[j].method_type == "supervised"]
    chunk, token = page(request, mine, {"name": lambda j: j.id,
                                        "createTime": lambda j: (j.created_at, j.id)})
    return Reply({"supervisedFineTuningJobs": [job_json(j, ctx.now) for j in chunk],
                  "nextPageToken": token, "totalSize": len(mine)})


def get_job(ctx: Ctx, request: Request, account: str, job_id: str) -> Reply:
    unknown = sorted(set(request.args) - {"readMask"})
    if unknown:
        raise invalid(f"unknown query parameter \"{unknown[0]}\"")
    return Reply(job_json(find(ctx, account, job_id), ctx.now))


def cancel_job(ctx: Ctx, request: Request, account: str, job_id: str) -> Reply:
    return cancel(ctx, request, find(ctx, account, job_id))


def cancel(ctx: Ctx, request: Request, job: JobRec) -> Reply:
    json_body(request, ())
    status = timeline.status(job, ctx.now)
    if status in timeline.TERMINAL:
        raise FireworksError("FAILED_PRECONDITION",
                             f"Job \"{job_name(job)}\" is {_STATES[status]}; it cannot be "
                             "cancelled")
    ctx.store.put_job(replace(job, cancelled_at=ctx.now, final_status="cancelled",
                              finished_at=int(ctx.now)))
    return Reply({})
