"""Dated facts about base models and providers, read from ``data/catalog.yaml``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

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

    def inference_prices(self, model_id: str) -> tuple[float, float] | None:
        """USD per 1M input and output tokens for ``model_id`` (a fine-tune of this base, or it)."""
        prefix = "fine_tuned_" if parse_fine_tuned(model_id) is not None else ""
        prices = self.inference_usd_per_1m
        if f"{prefix}input" not in prices or f"{prefix}output" not in prices:
            return None
        return float(prices[f"{prefix}input"]), float(prices[f"{prefix}output"])


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


@dataclass(frozen=True)
class Catalog:
    recorded: dt.date
    models: tuple[ModelInfo, ...]
    providers: tuple[ProviderInfo, ...]

    def model(self, model_id: str) -> ModelInfo | None:
        """The entry for a snapshot id, an alias, or the root base of a ``ft:`` model id."""
        wanted = root_base(model_id)
        for info in self.models:
            if wanted == info.id or wanted in info.aliases:
                return info
        return None

    def provider(self, provider_type: str) -> ProviderInfo | None:
        return next((p for p in self.providers if p.type == provider_type), None)

    def training_stop(self, provider_type: str | None, base: str) -> dt.date | None:
        """The first day ``provider_type`` refuses new fine-tuning jobs on ``base`` (a snapshot
        id, an alias or a fine-tuned id), or None when nothing is announced."""
        provider = self.provider(provider_type) if provider_type else None
        if provider is None:
            return None
        info = self.model(base)
        dated = provider.training_end.get(info.id) if info else None
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


@cache
def load() -> Catalog:
    text = resources.files("ftops").joinpath("data/catalog.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    models = tuple(
        ModelInfo(
            id=model_id,
            aliases=tuple(entry.get("aliases", ())),
            encoding=entry["encoding"],
            example_token_limit=int(entry["example_token_limit"]),
            training_usd_per_1m=entry["training_usd_per_1m"],
            methods=tuple(entry["methods"]),
            shutdown_date=_date(entry.get("shutdown_date")),
            source=entry["source"],
            inference_usd_per_1m=dict(entry.get("inference_usd_per_1m") or {}),
        )
        for model_id, entry in raw["models"].items()
    )
    providers = tuple(
        ProviderInfo(
            type=name,
            new_jobs_stop_date=_date(entry.get("new_jobs_stop_date")),
            source=entry["source"],
            training_end=_dates(entry.get("training_end")),
            inference_end=_dates(entry.get("inference_end")),
            methods={base: tuple(m) for base, m in (entry.get("methods") or {}).items()},
        )
        for name, entry in raw["providers"].items()
    )
    recorded = _date(raw["recorded"])
    assert recorded is not None
    return Catalog(recorded=recorded, models=models, providers=providers)
