"""Fireworks DPO jobs (``dpoJobs``, SDK 1.2.30 ``client.dpo_jobs``) in the shape of its
supervised ones, so that ``ftops.providers.fireworks`` reads and makes both alike.

A DPO job nests what a supervised job has at its top (base or warm start, epochs, learning
rate, LoRA rank, output model, ...) under ``trainingConfig`` (``TrainingConfig``, the same names)
and the loss under ``lossConfig`` (``{"method": "DPO", "dpo": {"beta": ...}}``); it takes no
evaluation dataset. The dataset layout is the one ftops's preference format already is
(``ftops.dataformats``): nothing is converted.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import fireworks
from fireworks import Fireworks
from fireworks.types import DpoJob

# The training-config fields a job shows, as the SDK's snake_case attributes.
_CONFIG = ("base_model", "warm_start_from", "output_model", "epochs", "batch_size",
           "batch_size_samples", "learning_rate", "learning_rate_warmup_steps", "lora_rank",
           "max_context_length", "gradient_accumulation_steps", "optimizer_weight_decay")


def flat(obj: Any) -> SimpleNamespace:
    """A DPO job (``fireworks.types.DpoJob``) with its training config lifted to the top, as a
    supervised job shows it, and no evaluation dataset."""
    config = obj.training_config
    fields = {name: getattr(config, name, None) if config is not None else None
              for name in _CONFIG}
    return SimpleNamespace(name=obj.name, state=obj.state, status=obj.status,
                           dataset=obj.dataset, create_time=obj.create_time,
                           evaluation_dataset=None, **fields)


def beta(obj: Any) -> dict[str, float]:
    """The job's DPO beta as a hyperparameter; none when it shows none (Fireworks' default)."""
    loss = obj.loss_config
    dpo = loss.dpo if loss is not None else None
    return {} if dpo is None or dpo.beta is None else {"beta": dpo.beta}


def is_dpo(obj: Any) -> bool:
    return isinstance(obj, DpoJob)


def create(client: Fireworks, method: str, args: dict[str, Any]) -> Any:
    """The job created in the collection of ``method`` (``args``: a supervised job's)."""
    if method == "dpo":
        return client.dpo_jobs.create(**create_args(args))
    return client.supervised_fine_tuning_jobs.create(**args)


def get(client: Fireworks, job_id: str, *, dpo: bool) -> Any:
    """The job from its collection: DPO when known to be one, else supervised, then DPO (an id
    is the client's choice or a random one: the two collections never share one)."""
    if not dpo:
        try:
            return client.supervised_fine_tuning_jobs.get(job_id)
        except fireworks.NotFoundError:
            pass
    return client.dpo_jobs.get(job_id)


def cancel(client: Fireworks, job_id: str, *, dpo: bool) -> None:
    """The job cancelled in its collection, found as ``get`` finds it."""
    if not dpo:
        try:
            client.supervised_fine_tuning_jobs.cancel(job_id, body={})
            return
        except fireworks.NotFoundError:
            pass
    client.dpo_jobs.cancel(job_id, body={})


def create_args(args: dict[str, Any]) -> dict[str, Any]:
    """``dpo_jobs.create``'s arguments from a supervised job's (``args``: snake_case fields,
    ``beta`` among them when set): all but the dataset go into the training config."""
    config = dict(args)
    dataset = config.pop("dataset")
    loss: dict[str, Any] = {"method": "DPO"}
    if "beta" in config:
        loss["dpo"] = {"beta": config.pop("beta")}
    return {"dataset": dataset, "training_config": config, "loss_config": loss}
