"""Nebius Token Factory's fine-tuning jobs: the create body it takes, and the job as it shows it.

The routes, store, state machine, events and checkpoints are OpenAI's (``jobs``, ``timeline``);
what differs is here. Sources and what could not be confirmed are in ``nebius``'s docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from ftops.emulator import datafile, jobs, timeline
from ftops.emulator.chat import training_blob
from ftops.emulator.common import ApiError, Ctx, Reply, parse_json
from ftops.emulator.files import live_file
from ftops.emulator.store import JobRec

# The create body's fields (API reference, "Create a fine-tuning job"). ``extra_body`` is listed
# there as an (ignored) object; ``metadata`` is not listed, and is refused as any unknown field.
CREATE_KEYS = frozenset({
    "model", "training_file", "validation_file", "hyperparameters", "method", "integrations",
    "seed", "suffix", "tags", "from_checkpoint", "extra_body",
})
# The base models fine-tuned here: id -> (the longest context_length, full fine-tuning too).
BASES: dict[str, tuple[int, bool]] = {
    "meta-llama/Llama-3.1-8B-Instruct": (131072, True),
    "meta-llama/Meta-Llama-3.1-8B-Instruct": (131072, True),
    "meta-llama/Llama-3.3-70B-Instruct": (131072, False),
    "Qwen/Qwen3-32B": (32768, False),
    "Qwen/Qwen2.5-7B-Instruct": (32768, True),
    "openai/gpt-oss-20b": (131072, True),
    "openai/gpt-oss-120b": (131072, False),
}
# name -> (kind, minimum, maximum, default): the defaults are the reference's example values.
HYPERPARAMETERS: dict[str, tuple[type, float, float, Any]] = {
    "batch_size": (int, 8, 32, 8),
    "learning_rate": (float, 0, 1, 0.00001),
    "n_epochs": (int, 1, 20, 3),
    "warmup_ratio": (float, 0, 1, 0),
    "weight_decay": (float, 0, 1, 0),
    "packing": (bool, 0, 1, True),
    "max_grad_norm": (float, 0, 1000, 1),
    "context_length": (int, 1024, 131072, 8192),
    "lora": (bool, 0, 1, False),
    "lora_r": (int, 1, 128, 8),
    "lora_alpha": (int, 1, 256, 8),
    "lora_dropout": (float, 0, 1, 0),
}
_CHECKPOINT_KEYS = frozenset({"repo", "type", "revision", "token"})


class NebiusError(ApiError):
    """An error as the service's FastAPI answers it: ``{"detail": "<message>"}``."""

    def body(self) -> dict[str, Any]:
        return {"detail": self.message}


class Invalid(NebiusError):
    """A body FastAPI's validation refuses: 422, ``{"detail": [{type, loc, msg, input}]}``."""

    def __init__(self, loc: tuple[str | int, ...], msg: str, kind: str,
                 value: Any = None) -> None:
        super().__init__(422, msg)
        self.loc, self.kind, self.value = loc, kind, value

    def body(self) -> dict[str, Any]:
        return {"detail": [{"type": self.kind, "loc": list(self.loc), "msg": self.message,
                            "input": self.value}]}


@dataclass(frozen=True)
class Checked:
    model: str
    training_file: str
    validation_file: str | None
    hyperparameters: dict[str, Any]
    suffix: str | None
    seed: int
    integrations: list[Any] | None


def _kind_ok(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind is int else isinstance(value, (int, float))


def _typed(body: dict[str, Any], key: str, kind: type, where: tuple[str | int, ...]) -> Any:
    value = body.get(key)
    if value is not None and not _kind_ok(value, kind) and not isinstance(value, kind):
        raise Invalid((*where, key), f"Input should be a valid {kind.__name__}",
                      f"{kind.__name__}_type", value)
    return value


def _extras(body: dict[str, Any], allowed: frozenset[str], where: tuple[str | int, ...]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Invalid((*where, unknown[0]), "Extra inputs are not permitted", "extra_forbidden",
                      body[unknown[0]])


def hyperparameters(given: dict[str, Any], where: tuple[str | int, ...],
                    context: int) -> dict[str, Any]:
    """Every hyperparameter, defaults filled in; ``Invalid`` for an unknown or wrong one."""
    _extras(given, frozenset(HYPERPARAMETERS), where)
    resolved: dict[str, Any] = {}
    for name, (kind, low, high, default) in HYPERPARAMETERS.items():
        value = given.get(name)
        if value is None:
            resolved[name] = default
            continue
        if not _kind_ok(value, kind):
            raise Invalid((*where, name), f"Input should be a valid {kind.__name__}",
                          f"{kind.__name__}_type", value)
        top = min(high, context) if name == "context_length" else high
        if kind is not bool and not low <= value <= top:
            raise Invalid((*where, name), f"Input should be between {low} and {top}",
                          "value_error", value)
        resolved[name] = value
    return resolved


def _method(body: dict[str, Any], context: int) -> dict[str, Any]:
    top = _typed(body, "hyperparameters", dict, ("body",))
    method = _typed(body, "method", dict, ("body",))
    inner = None
    if method is not None:
        _extras(method, frozenset({"type", "supervised"}), ("body", "method"))
        if method.get("type", "supervised") != "supervised":
            raise Invalid(("body", "method", "type"), "Input should be 'supervised'",
                          "literal_error", method.get("type"))
        block = _typed(method, "supervised", dict, ("body", "method")) or {}
        _extras(block, frozenset({"hyperparameters"}), ("body", "method", "supervised"))
        inner = _typed(block, "hyperparameters", dict, ("body", "method", "supervised"))
    if top is not None and inner is not None:
        raise Invalid(("body",), "Value error, pass hyperparameters at the top level or under "
                      "method, not both", "value_error")
    if inner is not None:
        return hyperparameters(inner, ("body", "method", "supervised", "hyperparameters"),
                               context)
    return hyperparameters(top or {}, ("body", "hyperparameters"), context)


def _from_checkpoint(body: dict[str, Any]) -> None:
    checkpoint = _typed(body, "from_checkpoint", dict, ("body",))
    if checkpoint is None:
        return
    _extras(checkpoint, _CHECKPOINT_KEYS, ("body", "from_checkpoint"))
    if not isinstance(checkpoint.get("repo"), str):
        raise Invalid(("body", "from_checkpoint", "repo"), "Field required", "missing")
    if checkpoint.get("type", "hf") != "hf":
        raise Invalid(("body", "from_checkpoint", "type"), "Input should be 'hf'",
                      "literal_error", checkpoint.get("type"))


def _required_str(body: dict[str, Any], key: str) -> str:
    if body.get(key) is None:
        raise Invalid(("body", key), "Field required", "missing")
    value: str = _typed(body, key, str, ("body",))
    return value


def parse(ctx: Ctx, request: Request) -> Checked:
    """The checked create body; ``Invalid`` (422) or ``NebiusError`` (400) otherwise."""
    body = parse_json(request.get_data() or b"null")
    if not isinstance(body, dict):
        raise Invalid(("body",), "Input should be a valid dictionary", "dict_type", body)
    _extras(body, CREATE_KEYS, ("body",))
    model = _required_str(body, "model")
    training = _required_str(body, "training_file")
    validation = _typed(body, "validation_file", str, ("body",))
    suffix = _typed(body, "suffix", str, ("body",))
    if suffix is not None and not 1 <= len(suffix) <= 64:
        raise Invalid(("body", "suffix"), "String should have at most 64 characters",
                      "string_too_long", suffix)
    seed = _typed(body, "seed", int, ("body",))
    integrations = _typed(body, "integrations", list, ("body",))
    _typed(body, "extra_body", dict, ("body",))
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, str) or (
            isinstance(tags, list) and all(isinstance(t, str) for t in tags))):
        raise Invalid(("body", "tags"), "Input should be a valid string", "string_type", tags)
    _from_checkpoint(body)
    if model not in BASES:
        raise NebiusError(400, f"Model {model} is not available for fine-tuning")
    context, full = BASES[model]
    params = _method(body, context)
    if not params["lora"] and not full:
        raise NebiusError(400, f"Model {model} supports only LoRA fine-tuning: set lora to true")
    for file_id, param in ((training, "training_file"), (validation, "validation_file")):
        rec = live_file(ctx, file_id) if file_id is not None else None
        if file_id is not None and (rec is None or rec.purpose != "fine-tune"):
            raise NebiusError(400, f"Invalid {param}: no fine-tune file {file_id}")
    return Checked(model, training, validation, params, suffix,
                   0 if seed is None else int(seed), integrations)


def _failure(ctx: Ctx, file_id: str, param: str) -> tuple[dict[str, str] | None, int]:
    """(the error the job will fail with, the examples) for one data file."""
    check = datafile.check(ctx.store.blob_path(file_id), "supervised")
    problem = check.problem or (
        f"the file has {check.examples} example(s); at least {datafile.MIN_EXAMPLES} are "
        "required" if check.too_few else None)
    if problem is None:
        return None, check.examples
    return {"code": f"invalid_{param}", "message": f"Dataset {file_id} is invalid: {problem}.",
            "param": param}, check.examples


def model_name(base: str, suffix: str | None, key: str) -> str:
    """The fine-tuned model's id: ``<base>-LoRa:<suffix>-<key>`` (``nebius`` docstring)."""
    return f"{base}-LoRa:{suffix or 'ft'}-{key}"


def create_job(ctx: Ctx, request: Request) -> Reply:
    checked = parse(ctx, request)
    failure, examples = _failure(ctx, checked.training_file, "training_file")
    if failure is None and checked.validation_file:
        failure = _failure(ctx, checked.validation_file, "validation_file")[0]
    key = ctx.store.new_id("", 8)
    job_id = ctx.store.new_id("ftjob-")
    params = checked.hyperparameters
    job = JobRec(
        id=job_id, created_at=ctx.now, duration=ctx.job_seconds, model=checked.model,
        root_model=checked.model, model_key=key, organization_id="", org_slug="",
        training_file=checked.training_file, validation_file=checked.validation_file,
        method_type="supervised", hyperparameters=params, resolved=dict(params), grader=None,
        suffix=checked.suffix, seed=checked.seed, metadata=None,
        integrations=checked.integrations, examples=examples,
        tokens_per_epoch=timeline.billable_tokens(
            ctx.store.blob_path(checked.training_file), "supervised", checked.model),
        failure=failure, model_name=model_name(checked.model, checked.suffix, key),
    )
    ctx.store.put_job(job)
    ctx.store.keep_blob(checked.training_file, training_blob(job.id))
    jobs.schedule(ctx.store, job)
    return Reply(job_view(job, timeline.job_json(job, ctx.now, initial=True), ctx.now))


# rendering -------------------------------------------------------------------------------------
def _trained_steps(job: JobRec, status: str, now: float) -> int:
    total = timeline.total_steps(job)
    if status == "succeeded":
        return total
    started = timeline.STARTED * job.duration
    ran = timeline.effective(job, now) - started
    if ran <= 0 or job.duration <= started:
        return 0
    return min(total, int(total * ran / (job.duration - started)))


def job_view(job: JobRec, body: dict[str, Any], now: float) -> dict[str, Any]:
    """OpenAI's job object as Nebius shows it: every hyperparameter, steps, no metadata."""
    out = {k: v for k, v in body.items() if k not in ("metadata", "user_provided_suffix")}
    out["hyperparameters"] = dict(job.resolved)
    out["method"] = {"type": "supervised",
                     "supervised": {"hyperparameters": dict(job.resolved)}}
    out["suffix"] = job.suffix
    out["organization_id"] = ""
    out["integrations"] = job.integrations or []
    out["total_steps"] = timeline.total_steps(job)
    out["trained_steps"] = _trained_steps(job, body["status"], now)
    return out


def rendered(handler: Callable[..., Reply]) -> Callable[..., Reply]:
    """``handler`` with every job it answers shown the Nebius way."""

    def serve(ctx: Ctx, request: Request, **args: str) -> Reply:
        reply = handler(ctx, request, **args)
        body = reply.body
        if isinstance(body, dict) and body.get("object") == "fine_tuning.job":
            body = job_view(ctx.store.jobs[body["id"]], body, ctx.now)
        elif isinstance(body, dict) and body.get("object") == "list" and any(
                isinstance(i, dict) and i.get("object") == "fine_tuning.job"
                for i in body.get("data", ())):
            body = {**body, "data": [job_view(ctx.store.jobs[i["id"]], i, ctx.now)
                                     for i in body["data"]]}
        return Reply(body, reply.status, reply.content_type, reply.headers)

    serve.__name__ = handler.__name__
    return serve
