from __future__ import annotations

import datetime as dt

from ftops import catalog


def test_lookup_by_snapshot_alias_and_fine_tune_id() -> None:
    cat = catalog.load()
    snap = cat.model("gpt-4o-mini-2024-07-18")
    assert snap is not None
    assert cat.model("gpt-4o-mini") == snap
    assert cat.model("ft:gpt-4o-mini-2024-07-18:acme:bot:abc123") == snap
    assert snap.encoding == "o200k_base"
    assert snap.shutdown_date == dt.date(2027, 1, 14)
    assert cat.model("gpt-3.5-turbo-0125").encoding == "cl100k_base"  # type: ignore[union-attr]
    assert cat.model("no-such-model") is None


def test_openai_stops_new_jobs() -> None:
    provider = catalog.load().provider("openai")
    assert provider is not None
    assert provider.new_jobs_stop_date == dt.date(2027, 1, 6)


OPEN_PROVIDERS = ("nebius", "together", "fireworks")


def test_each_open_provider_publishes_dated_sourced_bases() -> None:
    cat = catalog.load()
    for name in OPEN_PROVIDERS:
        provider = cat.provider(name)
        assert provider is not None, name
        assert provider.source and provider.offers, name
        assert provider.training_end == {} and provider.inference_end == {}  # none published
        for base, offer in provider.offers.items():
            info = cat.model(base)
            assert info is not None and info.id == base, base
            assert name in info.providers, base
            assert offer.methods and set(offer.methods) <= {"supervised", "dpo"}, base
            assert offer.training and set(offer.training) <= {"lora", "full"}, base
            assert offer.source and isinstance(offer.as_of, dt.date), base
            assert offer.as_of <= dt.date(2026, 12, 2), base
            assert provider.methods[base] == offer.methods  # what spec checks read
            assert cat.example_token_limit(name, base) == offer.example_token_limit["supervised"]
            assert set(offer.methods) <= set(info.methods), base


def test_training_prices_per_provider_method_and_kind() -> None:
    cat = catalog.load()
    llama = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
    assert cat.training_price("together", llama) == 0.48
    assert cat.training_price("together", llama, "dpo") == 1.20
    assert cat.training_price("together", llama, "supervised", "full") == 0.54
    assert cat.training_price("together", "Qwen/Qwen3-32B", "dpo", "full") == 4.12
    assert cat.training_price("together", "openai/gpt-oss-120b", "dpo") is None  # not published
    assert cat.training_price("fireworks", "llama-v3p1-8b-instruct") == 0.50  # by its alias
    assert cat.training_price("fireworks", "accounts/fireworks/models/gpt-oss-20b", "dpo") == 6.00
    # Nebius publishes no per-token price that could be found: the spec must give one.
    assert cat.training_price("nebius", "meta-llama/Llama-3.1-8B-Instruct") is None
    # A base the provider does not offer has no price there, even one priced elsewhere.
    assert cat.training_price("nebius", llama) is None
    # OpenAI and Azure keep the model's own price.
    assert cat.training_price("openai", "gpt-4o-mini") == 3.00
    assert cat.training_price("azure", "gpt-4o-mini-2024-07-18") == 3.00
    assert cat.training_price(None, "gpt-4o-mini") == 3.00
    every = [cat.training_price(p, b) for p in ("together", "fireworks")
             for b in cat.provider(p).offers]  # type: ignore[union-attr]
    assert all(isinstance(price, float) and price > 0 for price in every)


def test_per_provider_limits_and_lookups_by_id() -> None:
    cat = catalog.load()
    # The same weights, a different limit per provider and per method.
    assert cat.example_token_limit("together", "Qwen/Qwen3-32B") == 40960
    assert cat.example_token_limit("together", "Qwen/Qwen3-32B", "dpo") == 20480
    assert cat.example_token_limit("together", "openai/gpt-oss-20b") == 24576
    assert cat.example_token_limit("fireworks", "accounts/fireworks/models/gpt-oss-20b") == 131072
    assert cat.example_token_limit("openai", "gpt-4o-mini") == 65536
    nebius = cat.model("meta-llama/Meta-Llama-3.1-8B-Instruct")  # Nebius' inference spelling
    assert nebius is not None and nebius.id == "meta-llama/Llama-3.1-8B-Instruct"
    assert cat.model("qwen3-8b") == cat.model("accounts/fireworks/models/qwen3-8b")
    offer = cat.offer("nebius", "meta-llama/Meta-Llama-3.1-8B-Instruct")
    assert offer is not None and offer.training == ("lora", "full")
    # Which provider fine-tunes what: an open-weight base is no OpenAI model.
    assert cat.fine_tunable("together", "Qwen/Qwen3-8B") is not None
    assert cat.fine_tunable("openai", "Qwen/Qwen3-8B") is None
    assert cat.fine_tunable("fireworks", "Qwen/Qwen3-8B") is None
    assert cat.fine_tunable("azure", "gpt-4.1-mini") is not None
    assert cat.fine_tunable(None, "Qwen/Qwen3-8B") is not None  # a custom endpoint: any known
    openai_ids = {m.id for m in cat.models_of("openai")}
    assert "gpt-4o-mini-2024-07-18" in openai_ids and "Qwen/Qwen3-8B" not in openai_ids
    assert {m.id for m in cat.models_of("fireworks")} == set(cat.provider("fireworks").offers)  # type: ignore[union-attr]
    # No published retirements: no dates for open-weight providers.
    assert cat.training_stop("together", "Qwen/Qwen3-8B") is None
    assert cat.shutdown("nebius", "Qwen/Qwen3-32B") is None


def test_estimate_flag() -> None:
    # OpenAI's own encodings are exact; gpt-oss' o200k_harmony encodes text as o200k_base does.
    assert catalog.is_estimate("gpt-4o-mini") is False
    assert catalog.is_estimate("ft:gpt-4o-mini-2024-07-18:acme:bot:abc123") is False
    assert catalog.is_estimate("openai/gpt-oss-20b") is False
    assert catalog.is_estimate("accounts/fireworks/models/gpt-oss-20b") is False
    # Llama and Qwen are counted with cl100k_base, an approximation of their own tokenizers.
    for base in ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-8B", "qwen2p5-7b-instruct",
                 "meta-llama/Llama-3.3-70B-Instruct-Reference"):
        assert catalog.is_estimate(base) is True, base
    assert catalog.is_estimate("no-such-model") is True  # counted with the default encoding
    for info in catalog.load().models:
        assert info.encoding in ("o200k_base", "cl100k_base"), info.id  # bundled, offline
        assert catalog.is_estimate(info.id) is (not info.tokenizer_exact)


def test_the_fast_loader_reads_the_catalog_as_the_pure_one_does() -> None:
    """The catalog is read with libyaml's loader where PyYAML has it: it must mean the same."""
    from importlib import resources

    import yaml

    text = resources.files("ftops").joinpath("data/catalog.yaml").read_text(encoding="utf-8")
    assert yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == \
        yaml.load(text, Loader=yaml.SafeLoader)
