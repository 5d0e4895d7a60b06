"""Fireworks DPO jobs (``dpoJobs``) on the emulator's job timeline, beside the supervised ones
of ``fireworks_jobs`` (whose checks they share: datasets, base or warm start, numbers, output
model).

Followed: SDK 1.2.30's ``dpo_jobs`` resource and types (``DpoJobCreateParams``: ``dataset``,
``trainingConfig`` with the supervised job's fields, ``lossConfig`` ``{method, dpo: {beta}}``,
no evaluation dataset; ``dpoJobId`` in the query; ``{"dpoJobs": [...], "nextPageToken"}``
pages; ``:cancel``); the DPO beta "must be > 0 and < 0.5" (``DpoConfig``); the dataset layout
(docs.fireworks.ai/fine-tuning/dpo-fine-tuning: ``input.messages``, ``preferred_output``,
``non_preferred_output``), checked as ``datafile`` checks a preference file. Not confirmed, the
emulator's: the defaults (beta 0.1, those of a supervised job), that ``lossConfig.method``
defaults to DPO here (the SDK says GRPO "when METHOD_UNSPECIFIED"; only DPO is served), and
that a dataset of any ``format`` is taken. Not served: ``:resume``, deletion, metrics files.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from ftops.emulator import fireworks_jobs as sft
from ftops.emulator.common import Ctx, Reply
from ftops.emulator.fireworks_common import (
    FireworksError,
    account_of,
    check_id,
    invalid,
    json_body,
    key,
    page,
    rfc3339,
    split_key,
    typed,
)
from ftops.emulator.fireworks_data import BASES
from ftops.emulator.store import JobRec

COLLECTION = sft.COLLECTIONS["dpo"]
_FIELDS = ("dataset", "awsS3Config", "azureBlobStorageConfig", "displayName", "lossConfig",
           "rendererHuggingFaceRepoId", "reservationTarget", "trainingConfig", "useReservation",
           "wandbConfig")
# ``TrainingConfig``'s fields (SDK 1.2.30).
_CONFIG = ("baseModel", "batchSize", "batchSizeSamples", "samplerCheckpointSaveIntervalSteps",
           "epochs", "gradientAccumulationSteps", "jinjaTemplate", "learningRate",
           "learningRateWarmupSteps", "loraRank", "maxContextLength", "optimizerWeightDecay",
           "outputModel", "region", "warmStartFrom")
_DEFAULTS = {k: v for k, v in sft.DEFAULTS.items() if k in _CONFIG}
DEFAULT_BETA = 0.1


def _loss(body: dict[str, Any]) -> dict[str, Any]:
    loss = typed(body, "lossConfig", dict) or {}
    unknown = sorted(set(loss) - {"dpo", "klBeta", "method"})
    if unknown:
        raise invalid(f"proto: unknown field \"{unknown[0]}\"")
    method = loss.get("method") or "DPO"
    if method != "DPO":
        raise invalid(f"loss_config.method {method!r} is not implemented by the emulator "
                      "(DPO only)")
    dpo = typed(loss, "dpo", dict) or {}
    beta = dpo.get("beta", DEFAULT_BETA)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta < 0.5:
        raise invalid(f"invalid loss_config.dpo.beta {beta!r}: must be > 0 and < 0.5")
    return {"method": "DPO", "dpo": {**dpo, "beta": beta}}


def _config(body: dict[str, Any]) -> dict[str, Any]:
    config = typed(body, "trainingConfig", dict) or {}
    unknown = sorted(set(config) - set(_CONFIG))
    if unknown:
        raise invalid(f"proto: unknown field \"{unknown[0]}\"")
    return dict(config)


def create_job(ctx: Ctx, request: Request, account: str) -> Reply:
    account_of(account)
    unknown = sorted(set(request.args) - {"dpoJobId"})
    if unknown:
        raise invalid(f"unknown query parameter \"{unknown[0]}\"")
    body = json_body(request, _FIELDS)
    job_id = check_id(request.args.get("dpoJobId") or sft.new_id(ctx), "dpo_job_id")
    if key(account, job_id) in ctx.store.jobs:
        raise FireworksError("ALREADY_EXISTS", f"Job \"accounts/{account}/{COLLECTION}/{job_id}\""
                             " already exists")
    training = sft.dataset_key(ctx, account, body.get("dataset"), "dataset")
    config, loss = _config(body), _loss(body)
    model, root, _parent = sft.base_of(ctx, account, config)
    sft.numbers(config)
    if (config.get("maxContextLength") or 0) > BASES[root]:
        raise invalid(f"max_context_length {config['maxContextLength']} exceeds the context "
                      f"length {BASES[root]} of {root}")
    config = {**_DEFAULTS, **{k: v for k, v in config.items() if v is not None},
              "outputModel": sft.output_model(ctx, account, config, job_id)}
    requested = {"n_epochs": config["epochs"], "batch_size": config.get("batchSizeSamples", "auto"),
                 "learning_rate_multiplier": 1.0, "beta": loss["dpo"]["beta"],
                 "fireworks": {**config, "dataset": body["dataset"],
                               "displayName": body.get("displayName") or ""},
                 "fireworks_loss": loss}
    job = sft.start(ctx, sft.Settled(account, job_id, model, root, training, None, "dpo",
                                     requested, config["outputModel"]))
    return Reply(job_json(job, ctx.now, initial=True))


def job_json(job: JobRec, now: float, *, initial: bool = False) -> dict[str, Any]:
    """A ``DpoJob``: the training config and loss nested, as the SDK's type has them."""
    account, _ = split_key(job.id)
    state = sft.job_state(job, now, initial)
    config = dict(job.hyperparameters["fireworks"])
    status, done = sft.outcome(job, state)
    body: dict[str, Any] = {
        "name": sft.job_name(job), "displayName": config.pop("displayName"),
        "dataset": config.pop("dataset"), "createTime": rfc3339(job.created_at),
        "state": state, "status": status, "createdBy": f"emulator@{account}.fireworks.ai",
        "trainingConfig": config, "lossConfig": job.hyperparameters["fireworks_loss"],
    }
    if done is not None:
        body["completedTime"] = rfc3339(done)
    return body


def list_jobs(ctx: Ctx, request: Request, account: str) -> Reply:
    account_of(account)
    mine = [ctx.store.jobs[j] for j in ctx.store.job_order
            if split_key(j)[0] == account and ctx.store.jobs[j].method_type == "dpo"
            and "fireworks" in ctx.store.jobs[j].hyperparameters]
    chunk, token = page(request, mine, {"name": lambda j: j.id,
                                        "createTime": lambda j: (j.created_at, j.id)})
    return Reply({"dpoJobs": [job_json(j, ctx.now) for j in chunk], "nextPageToken": token,
                  "totalSize": len(mine)})


def get_job(ctx: Ctx, request: Request, account: str, job_id: str) -> Reply:
    unknown = sorted(set(request.args) - {"readMask"})
    if unknown:
        raise invalid(f"unknown query parameter \"{unknown[0]}\"")
    return Reply(job_json(sft.find(ctx, account, job_id, "dpo"), ctx.now))


def cancel_job(ctx: Ctx, request: Request, account: str, job_id: str) -> Reply:
    return sft.cancel(ctx, request, sft.find(ctx, account, job_id, "dpo"))
