"""The spec file format: private pydantic models that validate entries and make the JSON Schema.

Also the format's constants the rest of ftops shares: defaults and what each method needs.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError

DEFAULT_PROVIDER = "openai"
DEFAULT_ENCODING = "o200k_base"
SCHEMA_PATH = "schema/ftops.schema.json"
METHOD_FORMAT = {"supervised": "chat", "dpo": "preference", "reinforcement": "reinforcement"}
_COMMON_HP = ("n_epochs", "batch_size", "learning_rate_multiplier")
METHOD_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "supervised": _COMMON_HP,
    "dpo": (*_COMMON_HP, "beta"),
    "reinforcement": (
        *_COMMON_HP,
        "reasoning_effort",
        "compute_multiplier",
        "eval_interval",
        "eval_samples",
    ),
}
_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ENV_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
_URL_RE = r"^https?://\S+$"
_CHECK_RE = r"^(exact_match|contains|json_valid|json_schema:.+|regex:.+)$"
_SECTIONS = ("datasets", "base_models", "models", "evals", "providers", "pricing")


def _auto(
    kind: type[int] | type[float],
    *,
    low: float,
    high: float | None = None,
    low_exclusive: bool = False,
) -> Any:
    """A hyperparameter: the string "auto" or a number in range, with one clear error message."""
    number: dict[str, Any] = {"type": "integer" if kind is int else "number"}
    number["exclusiveMinimum" if low_exclusive else "minimum"] = low
    if high is not None:
        number["maximum"] = high
    bound = f"> {low:g}" if low_exclusive else f">= {low:g}"
    if high is not None:
        bound += f" and <= {high:g}"
    wanted = f"'auto' or {'an integer' if kind is int else 'a number'} {bound}"

    def check(value: object) -> object:
        if value == "auto" and isinstance(value, str):
            return value
        numeric = isinstance(value, int) or (kind is float and isinstance(value, float))
        if (
            isinstance(value, bool)
            or not numeric
            or (value <= low if low_exclusive else value < low)  # type: ignore[operator]
            or (high is not None and value > high)  # type: ignore[operator]
        ):
            raise PydanticCustomError("auto_or_number", "must be {wanted}", {"wanted": wanted})
        return value

    schema = {"anyOf": [{"const": "auto"}, number], "default": "auto"}
    return Annotated[kind | Literal["auto"], PlainValidator(check), WithJsonSchema(schema)]


_Name = Annotated[str, Field(pattern=_NAME_RE)]
_Ref = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, model_title_generator=lambda cls: cls.__name__.lstrip("_")
    )


class _SchemaGenerator(GenerateJsonSchema):
    def normalize_name(self, name: str) -> str:
        return super().normalize_name(name).lstrip("_")


class _Dataset(_Strict):
    """A JSONL training file, identified remotely by the SHA-256 of its bytes."""

    path: str = Field(
        min_length=1,
        description="Relative to this spec file; must stay inside the repository.",
    )
    format: Literal["chat", "preference", "reinforcement"] = Field(
        "chat", description="chat for supervised, preference for dpo, reinforcement for RFT."
    )


class _Hyperparameters(_Strict):
    """Each value may be "auto". dpo adds beta; reinforcement adds its four own."""

    n_epochs: _auto(int, low=1, high=50) = "auto"  # type: ignore[valid-type]
    batch_size: _auto(int, low=1, high=256) = "auto"  # type: ignore[valid-type]
    learning_rate_multiplier: _auto(float, low=0, low_exclusive=True) = "auto"  # type: ignore[valid-type]
    beta: _auto(float, low=0, high=2, low_exclusive=True) = Field(  # type: ignore[valid-type]
        "auto", description="dpo only."
    )
    reasoning_effort: Literal["default", "low", "medium", "high"] = Field(
        "default", description="reinforcement only."
    )
    compute_multiplier: _auto(float, low=0.00001, high=10, low_exclusive=True) = Field(  # type: ignore[valid-type]
        "auto", description="reinforcement only."
    )
    eval_interval: _auto(int, low=1) = Field("auto", description="reinforcement only.")  # type: ignore[valid-type]
    eval_samples: _auto(int, low=1) = Field("auto", description="reinforcement only.")  # type: ignore[valid-type]


_HP_KEYS = tuple(_Hyperparameters.model_fields)


class _Adopt(_Strict):
    """Binds a job created outside ftops to a models entry, for the fingerprint it was made with.

    Job metadata cannot be changed after creation, so the binding lives in the spec; a spec
    change gives a new fingerprint and the adopted job becomes the previous one (``replace``).
    """

    job: str = Field(pattern=r"^\S+$", description="The job id.")
    fingerprint: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="The model's fingerprint when it was adopted."
    )


_TrainingType = Literal["standard", "globalstandard", "developer"]


class _Deploy(_Strict):
    """Azure OpenAI: a deployment serving the trained model (billed by the hour)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$",
                      description="The deployment name; calls use it as the model.")
    sku: _TrainingType = Field("standard", description="The deployment type.")
    capacity: int = Field(1, ge=1, le=10_000, description="Units of 1,000 tokens per minute.")


class _Model(_Strict):
    """A fine-tuned model to train."""

    base: _Ref = Field(
        description="A base_models alias, another models entry (chaining), or a literal model id."
    )
    training: _Ref = Field(description="A datasets entry.")
    validation: _Ref | None = Field(None, description="A datasets entry.")
    method: Literal["supervised", "dpo", "reinforcement"] = "supervised"
    hyperparameters: _Hyperparameters | None = None
    grader: dict[str, Any] | None = Field(
        None,
        description="reinforcement only (and required there): the API's grader object.",
    )
    suffix: str | None = Field(None, min_length=1, max_length=64)
    seed: int | None = Field(None, ge=0, le=2147483647)
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] = (
        Field(default_factory=dict, max_length=16, description="Labels copied onto the job.")
    )
    max_cost_usd: float | None = Field(
        None, ge=0, description="Budget guard: fail when the estimated training cost exceeds it."
    )
    provider: _Ref = Field(DEFAULT_PROVIDER, description="A providers entry.")
    eval: _Ref | None = Field(None, description="An evals entry run after training.")
    promote: _Name | None = Field(
        None, description="Alias moved to this model only when its eval passes."
    )
    adopt: _Adopt | None = Field(
        None, description="A job ftops did not create, adopted as this model's (`ftops import`)."
    )
    training_type: _TrainingType | None = Field(
        None, description="azure only: where the job runs (default: the provider's)."
    )
    deploy: _Deploy | None = Field(None, description="azure only: serve the trained model.")
    migrates: _Name | None = Field(
        None, description="The models entry this one succeeds (`ftops migrate`): the plan says "
        "so, and it may promote that model's alias; ignored once that model is removed.")
    options: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], int | float | bool | str] = (
        Field(default_factory=dict, description="nebius, together, fireworks: the provider's "
              "own hyperparameters (learning_rate, lora_r, ...); part of the fingerprint.")
    )


class _Eval(_Strict):
    """Compares a trained model with its base on held-out data."""

    dataset: _Ref = Field(
        description="A chat datasets entry; each line's last assistant message is the reference."
    )
    checks: list[Annotated[str, Field(pattern=_CHECK_RE)]] = Field(
        min_length=1,
        description="exact_match | contains | json_valid | json_schema:<path> | regex:<pattern>; "
        "an example passes when every check passes.",
    )
    compare_with: _Ref = Field("base", description='"base" (default), "none", or a models entry.')
    min_score: float | None = Field(
        None, ge=0, le=1, description="Pass threshold: fraction of examples passing every check."
    )
    min_improvement: float | None = Field(
        None, ge=-1, le=1, description="The score must beat the comparison's by this much."
    )


class _Provider(_Strict):
    """Where jobs run; credentials come from the environment variable named by api_key_env."""

    type: Literal["openai", "azure", "nebius", "together", "fireworks"] = "openai"
    base_url: str | None = Field(
        None, pattern=_URL_RE,
        description="openai type: any OpenAI-compatible API; nebius, together, fireworks: "
        "their API's address (default: the provider's own).",
    )
    organization: str | None = Field(None, min_length=1, description="openai type only.")
    project: str | None = Field(None, min_length=1, description="openai type only.")
    endpoint: str | None = Field(None, pattern=_URL_RE, description="azure type only.")
    api_version: str | None = Field(
        None, min_length=1,
        description="azure type only: the older api-version dialect (default: the v1 API).",
    )
    api_key_env: str | None = Field(
        None, pattern=_ENV_RE, description="The NAME of an environment variable holding the key."
    )
    auth: Literal["key", "entra"] = Field(
        "key", description="azure type only: entra uses azure-identity's DefaultAzureCredential."
    )
    training_type: _TrainingType | None = Field(
        None, description="azure type only: the models' default (globalstandard)."
    )
    subscription: str | None = Field(None, min_length=1, description="azure: for deployments.")
    resource_group: str | None = Field(None, min_length=1, description="azure: for deployments.")
    account: str | None = Field(
        None, min_length=1,
        description="azure: the Azure OpenAI resource, for deployments; fireworks: the "
        "account id (required).",
    )
    management_url: str | None = Field(
        None, pattern=_URL_RE, description="azure: default https://management.azure.com."
    )


class _Price(_Strict):
    training_usd_per_1m: float = Field(ge=0)


class _SpecFile(_Strict):
    """An ftops spec file. All files under the spec directory share one namespace."""

    model_config = ConfigDict(title="ftops spec")

    datasets: dict[_Name, _Dataset] = Field(default_factory=dict)
    base_models: dict[_Name, _Ref] = Field(default_factory=dict, description="Alias -> model id.")
    models: dict[_Name, _Model] = Field(default_factory=dict)
    evals: dict[_Name, _Eval] = Field(default_factory=dict)
    providers: dict[_Name, _Provider] = Field(
        default_factory=dict, description='Default: one provider "openai" from the SDK env vars.'
    )
    pricing: dict[_Ref, _Price] = Field(
        default_factory=dict, description="Base model id -> price; overrides ftops' catalog."
    )


_ENTRY_TYPES: dict[str, type[BaseModel] | None] = {
    "datasets": _Dataset,
    "base_models": None,
    "models": _Model,
    "evals": _Eval,
    "providers": _Provider,
    "pricing": _Price,
}
_SINGULAR = {
    "datasets": "dataset",
    "base_models": "base model alias",
    "models": "model",
    "evals": "eval",
    "providers": "provider",
    "pricing": "price",
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file, generated from the models that validate it."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **_SpecFile.model_json_schema(schema_generator=_SchemaGenerator),
    }


def schema_text() -> str:
    """``json_schema()`` as deterministic text, the content of ``schema/ftops.schema.json``."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
