"""Dated facts about base models and providers, read from ``data/catalog.yaml``: per model its
encoding (and whether that is its own tokenizer), limit and price; per provider its cut-off dates
and, where it publishes them per base (Nebius, Together, Fireworks), its methods, LoRA or full,
limits and prices (``Offer``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from ftops.modelid import parse_fine_tuned


@dataclass(frozen=True)
class ModelInfo:
    id: str
    aliases: tuple[str, ...]
    encoding: str
    example_token_limit: int
    training_usd_per_1m: float | None
    methods: tuple[str, ...]
    shutdown_date: dt.date | None
    source: str
    # input/output (and fine_tuned_input/fine_tuned_output) USD per 1M tokens of inference
    inference_usd_per_1m: dict[str, float] = field(default_factory=dict)
    # False when ``encoding`` only approximates the base's own tokenizer (Llama, Qwen): its
    # counts, limits and costs are estimates (``is_estimate``).
    tokenizer_exact: bool = True
    # The provider types that fine-tune this base; OpenAI's models are OpenAI's and Azure's.
    providers: tuple[str, ...] = ("openai", "azure")

    def inference_prices(self, model_id: str) -> tuple[float, float] | None:
        """USD per 1M input and output tokens for ``model_id`` (a fine-tune of this base, or it)."""
        prefix = "fine_tuned_" if parse_fine_tuned(model_id) is not None else ""
        prices = self.inference_usd_per_1m
        if f"{prefix}input" not in prices or f"{prefix}output" not in prices:
            return None
        return float(prices[f"{prefix}input"]), float(prices[f"{prefix}output"])


@dataclass(frozen=True)
class Offer:
    """What one provider publishes about fine-tuning one base, as of one day."""

    methods: tuple[str, ...]  # supervised, dpo
    training: tuple[str, ...]  # lora, full
    # method -> the longest example, in the base's tokens
    example_token_limit: dict[str, int]
    # USD per 1M training tokens: "<method>" for LoRA, "<method>_full" for full fine-tuning
    training_usd_per_1m: dict[str, float]
    source: str
    as_of: dt.date | None


@dataclass(frozen=True)
class ProviderInfo:
    type: str
    new_jobs_stop_date: dt.date | None  # from this day on, new jobs are refused
    source: str
    # Per base model snapshot, where the provider retires bases on its own schedule (Azure):
    # the first day new jobs on it are refused, and the first day its fine-tunes stop answering.
    training_end: dict[str, dt.date] = field(default_factory=dict)
    inference_end: dict[str, dt.date] = field(default_factory=dict)
    # Where the provider publishes which bases it fine-tunes: base snapshot -> its methods.
    methods: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Where it publishes per-base facts (limits, prices, LoRA or full): base id -> its offer.
    offers: dict[str, Offer] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    recorded: dt.date
    models: tuple[ModelInfo, ...]
    providers: tuple[ProviderInfo, ...]
    # Retiring base -> provider type -> a suggested base to retrain its fine-tunes on.
    successors: dict[str, dict[str, str]] = field(default_factory=dict)

    def successors_of(self, base: str) -> dict[str, str]:
        """Provider type -> the suggested successor of ``base`` there (empty when none)."""
        info = self.model(base)
        return dict(self.successors.get(info.id if info else root_base(base), {}))

    def model(self, model_id: str) -> ModelInfo | None:
        """The entry for a snapshot id, an alias, or the root base of a ``ft:`` model id."""
        wanted = root_base(model_id)
        for info in self.models:
            if wanted == info.id or wanted in info.aliases:
                return info
        return None

    def provider(self, provider_type: str) -> ProviderInfo | None:
        return next((p for p in self.providers if p.type == provider_type), None)

    def models_of(self, provider_type: str) -> tuple[ModelInfo, ...]:
        """The bases ``provider_type`` fine-tunes."""
        return tuple(m for m in self.models if provider_type in m.providers)

    def fine_tunable(self, provider_type: str | None, base: str) -> ModelInfo | None:
        """The entry of ``base`` when ``provider_type`` fine-tunes it; with no provider type (a
        custom endpoint) any base the catalog knows."""
        info = self.model(base)
        if info is None or (provider_type is not None and provider_type not in info.providers):
            return None
        return info

    def offer(self, provider_type: str | None, base: str) -> Offer | None:
        """What ``provider_type`` publishes about fine-tuning ``base`` (an id or an alias)."""
        provider = self.provider(provider_type) if provider_type else None
        if provider is None:
            return None
        info = self.model(base)
        return provider.offers.get(info.id if info else root_base(base))

    def training_price(self, provider_type: str | None, base: str, method: str = "supervised",
                       training: str = "lora") -> float | None:
        """USD per 1M training tokens of ``method`` (LoRA, or ``training="full"``) on ``base``
        at ``provider_type``; None when nothing is published. A provider with per-base offers
        prices only what it offers; OpenAI and Azure price by the model."""
        provider = self.provider(provider_type) if provider_type else None
        if provider is not None and provider.offers:
            offer = self.offer(provider_type, base)
            key = method if training == "lora" else f"{method}_{training}"
            price = offer.training_usd_per_1m.get(key) if offer else None
            return float(price) if price is not None else None
        info = self.model(base)
        return info.training_usd_per_1m if info else None

    def example_token_limit(self, provider_type: str | None, base: str,
                            method: str = "supervised") -> int | None:
        """The longest example ``provider_type`` trains on ``base`` with ``method``: its
        published limit, else the base's own."""
        offer = self.offer(provider_type, base)
        if offer is not None and method in offer.example_token_limit:
            return offer.example_token_limit[method]
        info = self.model(base)
        return info.example_token_limit if info else None

    def is_estimate(self, model_id: str) -> bool:
        """True when token counts of ``model_id`` are not its own tokenizer's: an unknown model
        (counted with the default encoding) or one whose encoding approximates its tokenizer."""
        info = self.model(model_id)
        return info is None or not info.tokenizer_exact

    def training_stop(self, provider_type: str | None, base: str) -> dt.date | None:
        """The first day ``provider_type`` refuses new fine-tuning jobs on ``base`` (a snapshot
        id, an alias or a fine-tuned id), or None when nothing is announced."""
        provider = self.provider(provider_type) if provider_type else None
        if provider is None:
            return None
        info = self.model(base)
        dated = provider.training_end.get(info.id if info else root_base(base))
        days = [d for d in (provider.new_jobs_stop_date, dated) if d is not None]
        return min(days, default=None)

    def shutdown(self, provider_type: str | None, base: str) -> dt.date | None:
        """The first day fine-tunes of ``base`` stop answering on ``provider_type``. The
        models' ``shutdown_date`` is OpenAI's; other providers have their own table."""
        provider = self.provider(provider_type) if provider_type else None
        info = self.model(base)
        if provider is None or info is None:
            return None
        if provider.type == "openai":
            return info.shutdown_date
        return provider.inference_end.get(info.id)


def approximated(model_id: str) -> bool:
    """A base the catalog knows whose tokens are counted with another model's tokenizer (the
    open-weight bases: none ships its own offline)."""
    info = load().model(model_id)
    return info is not None and not info.tokenizer_exact


def is_estimate(model_id: str) -> bool:
    """``Catalog.is_estimate`` of the shipped catalog: whether counts, limits and costs for
    ``model_id`` should be shown as estimates."""
    return load().is_estimate(model_id)


def root_base(model_id: str) -> str:
    """``ft:<base>:<org>:<suffix>:<id>`` (OpenAI) or ``<base>.ft-<hex>`` (Azure) -> ``<base>``;
    any other id is returned unchanged."""
    parsed = parse_fine_tuned(model_id)
    return parsed.base if parsed else model_id


def _date(value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _dates(table: dict[str, object] | None) -> dict[str, dt.date]:
    return {key: day for key, value in (table or {}).items() if (day := _date(value))}


def _model(model_id: str, entry: dict[str, Any]) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        aliases=tuple(entry.get("aliases", ())),
        encoding=entry["encoding"],
        example_token_limit=int(entry["example_token_limit"]),
        training_usd_per_1m=entry["training_usd_per_1m"],
        methods=tuple(entry["methods"]),
        shutdown_date=_date(entry.get("shutdown_date")),
        source=entry["source"],
        inference_usd_per_1m=dict(entry.get("inference_usd_per_1m") or {}),
        tokenizer_exact=bool(entry.get("tokenizer_exact", True)),
        providers=tuple(entry.get("providers", ("openai", "azure"))),
    )


def _offer(entry: dict[str, Any]) -> Offer:
    return Offer(
        methods=tuple(entry["methods"]),
        training=tuple(entry["training"]),
        example_token_limit={k: int(v) for k, v in entry["example_token_limit"].items()},
        training_usd_per_1m={k: float(v) for k, v in (entry["training_usd_per_1m"] or {}).items()},
        source=entry["source"],
        as_of=_date(entry.get("as_of")),
    )


def _provider(name: str, entry: dict[str, Any]) -> ProviderInfo:
    offers = {base: _offer(e) for base, e in (entry.get("bases") or {}).items()}
    # A provider's offers say which methods it has on each base, as Azure's ``methods`` does.
    methods = {base: tuple(m) for base, m in (entry.get("methods") or {}).items()}
    methods |= {base: offer.methods for base, offer in offers.items()}
    return ProviderInfo(
        type=name,
        new_jobs_stop_date=_date(entry.get("new_jobs_stop_date")),
        source=entry["source"],
        training_end=_dates(entry.get("training_end")),
        inference_end=_dates(entry.get("inference_end")),
        methods=methods,
        offers=offers,
    )


@cache
def load() -> Catalog:
    text = resources.files("ftops").joinpath("data/catalog.yaml").read_text(encoding="utf-8")
    # libyaml's loader where PyYAML has it: 5 ms instead of 47 for this file, in every command
    # that reads a spec (the data is ftops's own, so the two loaders' error texts never show).
    raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    models = tuple(_model(model_id, entry) for model_id, entry in raw["models"].items())
    providers = tuple(_provider(name, entry) for name, entry in raw["providers"].items())
    recorded = _date(raw["recorded"])
    assert recorded is not None
    successors = {base: dict(table) for base, table in (raw.get("successors") or {}).items()}
    return Catalog(recorded=recorded, models=models, providers=providers, successors=successors)
