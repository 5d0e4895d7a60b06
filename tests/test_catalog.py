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
