from __future__ import annotations

import pytest

from ftops.catalog import root_base
from ftops.changes import suffix_of
from ftops.modelid import FineTunedId, parse_fine_tuned

BASE = "gpt-4o-mini-2024-07-18"


@pytest.mark.parametrize(("model_id", "parsed"), [
    (f"ft:{BASE}:acme:bot:abc123", FineTunedId(BASE, "acme", "bot", "abc123")),
    (f"ft:{BASE}:acme::abc123", FineTunedId(BASE, "acme", None, "abc123")),
    (f"ft:{BASE}:acme:bot:abc123:ckpt-step-40",
     FineTunedId(BASE, "acme", "bot", "abc123", "ckpt-step-40")),
    (f"ft:{BASE}:acme::abc123:ckpt-step-40",
     FineTunedId(BASE, "acme", None, "abc123", "ckpt-step-40")),
    (f"{BASE}.ft-0123abcd", FineTunedId(BASE, None, None, "0123abcd")),
    (f"{BASE}.ft-0123abcd-my-bot", FineTunedId(BASE, None, "my-bot", "0123abcd")),
])
def test_fine_tuned_ids_of_both_providers(model_id: str, parsed: FineTunedId) -> None:
    assert parse_fine_tuned(model_id) == parsed
    assert root_base(model_id) == BASE


@pytest.mark.parametrize("model_id", [
    BASE, "gpt-4o-mini", "", "ft:", "ft:x", "ft:P:1", "ft:a:b:c", "ft::org:s:id",
    "ft:a:b:c:", "ft:a:b:c:d:", "ft:a:b:c:d:e:f", ".ft-abc", f"{BASE}.ft-",
])
def test_other_ids_are_not_fine_tuned(model_id: str) -> None:
    assert parse_fine_tuned(model_id) is None
    assert root_base(model_id) == model_id


def test_suffix_of_reads_openai_ids_and_their_checkpoints_only() -> None:
    assert suffix_of(f"ft:{BASE}:acme:bot:abc123") == (True, "bot")
    assert suffix_of(f"ft:{BASE}:acme::abc123") == (True, None)
    assert suffix_of(f"ft:{BASE}:acme:bot:abc123:ckpt-step-40") == (True, "bot")
    assert suffix_of(f"{BASE}.ft-0123abcd-bot") == (False, None)
    assert suffix_of(None) == (False, None)
    assert suffix_of("ft:P:1") == (False, None)
