"""What a fine-tuning job create request may say, checked the way the API checks it.

Nothing here writes the account. The one side effect is drawing a default seed, which advances
the account's seeded random stream (and so every later id): the calendar's refusal comes before
it, so a create refused for the day changes nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from ftops import catalog
from ftops.emulator import azure_jobs, datafile, retirement
from ftops.emulator.common import Ctx, invalid, json_body, required, typed
from ftops.emulator.files import live_file
from ftops.modelid import parse_fine_tuned

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


@dataclass(frozen=True)
class JobRequest:
    """A create request that passed every check, with the training data's verdict."""

    model: str  # as the job reports it: aliases resolve to their snapshot
    root_model: str  # the catalog snapshot at the root of a chain of fine-tunes
    training_file: str
    validation_file: str | None
    method_type: str
    hyperparameters: dict[str, Any]
    grader: dict[str, Any] | None
    suffix: str | None
    seed: int
    metadata: dict[str, str] | None
    integrations: list[dict[str, Any]] | None
    examples: int
    tokens: int
    failure: dict[str, str] | None  # set when a data file is malformed: the job will fail
    training_type: str | None = None  # Azure's trainingType, under its rules (``azure_jobs``)


def parse(ctx: Ctx, request: Request) -> JobRequest:
    """The checked request; raises the API's 400 for the first thing wrong with it."""
    body = json_body(request, (*_CREATE_KEYS, "trainingType") if ctx.azure_rules else _CREATE_KEYS)
    requested = required(body, "model", str)
    training = required(body, "training_file", str)
    validation = typed(body, "validation_file", str)
    training_type = None
    if ctx.azure_rules:  # before the model is looked at: Azure's answer names the model
        training_type = azure_jobs.training_type(body)
        azure_jobs.check_base(requested, parse_fine_tuned(requested) is not None)
    model, info = _base_model(ctx, requested)
    # The calendar comes right after the model is known and before the seed is drawn (which
    # advances the account's random stream): a refused create must change nothing.
    retirement.check_training(ctx, model, info.id)
    method_type, hyperparameters, grader = _method(body, info, requested)
    suffix, metadata, integrations = _suffix(ctx, body), _metadata(body), _integrations(body)
    if ctx.drop_metadata:  # checked as the API checks it, then forgotten (``Emulator`` docs)
        metadata = None
    seed = _seed(ctx, body)
    _fine_tune_file(ctx, training, "training_file")
    if validation is not None:
        _fine_tune_file(ctx, validation, "validation_file")
    train = datafile.check(ctx.store.blob_path(training), method_type)
    return JobRequest(
        model=model,
        root_model=info.id,
        training_file=training,
        validation_file=validation,
        method_type=method_type,
        hyperparameters=hyperparameters,
        grader=grader,
        suffix=suffix,
        seed=seed,
        metadata=metadata,
        integrations=integrations,
        examples=train.examples,
        tokens=train.tokens,
        failure=_data_failure(ctx, training, train, validation, method_type),
        training_type=training_type,
    )


def _data_failure(
    ctx: Ctx,
    training: str,
    train: datafile.DataCheck,
    validation: str | None,
    method_type: str,
) -> dict[str, str] | None:
    """The job's error when a data file is malformed or too small. The API accepts the create
    and fails the job during validation, so this is not a 400."""
    if train.problem:
        return {
            "code": "invalid_training_file",
            "message": f"Training file {training} has an invalid format: {train.problem}.",
            "param": "training_file",
        }
    if train.too_few:
        # OpenAI's code and words, as failed jobs of the live API report them, e.g. the error
        # Error(code='invalid_n_examples', message='Training file has 7 example(s), but must have
        # at least 10 examples', param='training_file') printed by an SDK script on GitHub; the
        # openai-php/client test fixture of a failed job (tests/Fixtures/FineTuning.php) has the
        # same three fields. The fine-tuning guide asks for at least 10 examples.
        return {
            "code": "invalid_n_examples",
            "message": f"Training file has {train.examples} example(s), but must have at least "
            f"{datafile.MIN_EXAMPLES} examples",
            "param": "training_file",
        }
    if validation is None:
        return None
    valid = datafile.check(ctx.store.blob_path(validation), method_type)
    # No source gives the live API's answer to a small validation file: the emulator keeps its
    # own words, under the code that names the file.
    problem = valid.problem or (
        f"the file has {valid.examples} example(s); at least {datafile.MIN_EXAMPLES} are required"
        if valid.too_few
        else None
    )
    if problem:
        return {
            "code": "invalid_validation_file",
            "message": f"Validation file {validation} has an invalid format: {problem}.",
            "param": "validation_file",
        }
    return None


def _base_model(ctx: Ctx, model: str) -> tuple[str, catalog.ModelInfo]:
    """(the model id the job reports, the catalog entry of its root base model)."""
    # Only the bases this flavour's provider fine-tunes (not another provider's open weights).
    info = catalog.load().fine_tunable(ctx.flavor, model)
    fine_tuned = parse_fine_tuned(model) is not None  # OpenAI's ft:... or Azure's <base>.ft-<hex>
    known = model in ctx.store.models if fine_tuned else info is not None
    if not known or info is None:
        raise invalid(
            f"Model {model} is not available for fine-tuning or does not exist.",
            "model",
            "model_not_available",
        )
    return (model if fine_tuned else info.id), info


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


def _suffix(ctx: Ctx, body: dict[str, Any]) -> str | None:
    suffix: str | None = typed(body, "suffix", str)
    if ctx.azure_rules:
        azure_jobs.check_suffix(suffix)
    elif suffix is not None and (
        not 1 <= len(suffix) <= 64 or ":" in suffix or any(c.isspace() for c in suffix)
    ):
        raise invalid(
            "Invalid 'suffix': use 1 to 64 characters without ':' or spaces.",
            "suffix",
            "invalid_value",
        )
    return suffix


def _metadata(body: dict[str, Any]) -> dict[str, str] | None:
    # A dict of anything (typed checks only the kind); its pairs are checked to be strings below.
    metadata: dict[Any, Any] | None = typed(body, "metadata", dict)
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
    # A list of anything (typed checks only the kind); each item is checked to be a dict below.
    integrations: list[Any] | None = typed(body, "integrations", list)
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
