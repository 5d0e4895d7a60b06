"""Assistant tokens and examples missing a system or user message: what the OpenAI cookbook's
data-prep notebook reports, read from the counts the analysis already makes (no second encode),
exact against tiktoken, and the same whether the file is analysed whole, in blocks from the
cache after an append, or by the old cache entries (never trusted)."""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from ftops import datacache
from ftops.datasets import analyze, blocks, lines
from ftops.datasets.blocks import Rule
from ftops.datasets.lines import make_settings, new_counter, scan_lines
from ftops.tokens import get_encoding
from ftops.validate import validate

RULE = Rule(min_bytes=512, spread_bytes=1536, max_bytes=4096)  # tens of blocks
WORDS = ["refund", "order", "tracking", "café", "naïve", "数据", "invoice", "🙂", "shipping"]
CALL = {"id": "c1", "type": "function",
        "function": {"name": "lookup", "arguments": "{\"id\": 7}"}}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _example(rng: random.Random, i: int) -> dict[str, Any]:
    """Multi-turn, weight 0 turns, a tool call with no content, some long replies (over the
    counter's 4,096-character cache limit), some without a system or user message."""
    messages: list[dict[str, Any]] = []
    if i % 3:
        messages.append({"role": "system", "content": "You are a support agent."})
    if i % 7 == 0:  # no user message: an assistant-only example
        messages.append({"role": "assistant", "content": _text(rng, 5)})
        return {"messages": messages}
    messages.append({"role": "user", "content": f"q{i} {_text(rng, rng.randint(1, 9))}"})
    messages.append({"role": "assistant", "content": _text(rng, 4), "weight": 0})
    if i % 4 == 0:
        messages += [{"role": "assistant", "content": None, "tool_calls": [CALL]},
                     {"role": "tool", "tool_call_id": "c1", "content": "{\"ok\": true}"}]
    messages.append({"role": "user", "content": _text(rng, 3)})
    long = i % 11 == 0
    messages.append({"role": "assistant", "content": _text(rng, 1500 if long else 12),
                     "weight": 1})
    return {"messages": messages, **({"tools": TOOLS} if i % 4 == 0 else {})}


def _write(path: Path, examples: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples),
                    encoding="utf-8")


def _expected(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """The notebook's way: encode the content of every assistant message (None counts 0)."""
    encoding = get_encoding("o200k_base")
    counts = [sum(len(encoding.encode(m["content"])) for m in e["messages"]
                  if m["role"] == "assistant" and isinstance(m["content"], str))
              for e in examples]
    return {"total": sum(counts), "min": min(counts), "max": max(counts),
            "mean": sum(counts) / len(counts), "counted": len(counts),
            "missing_system": sum(not any(m["role"] == "system" for m in e["messages"])
                                  for e in examples),
            "missing_user": sum(not any(m["role"] == "user" for m in e["messages"])
                                for e in examples)}


def _found(path: Path, **options: Any) -> dict[str, Any]:
    report = analyze(path, workers=1, **options)
    assert report.ok, report.errors
    stats = report.assistant_tokens
    return {"total": stats.total, "min": stats.min, "max": stats.max, "mean": stats.mean,
            "counted": stats.counted, "missing_system": report.missing_system,
            "missing_user": report.missing_user}


@pytest.fixture
def examples() -> list[dict[str, Any]]:
    rng = random.Random(20)
    return [_example(rng, i) for i in range(120)]


def test_assistant_tokens_are_exact(tmp_path: Path, examples: list[dict[str, Any]]) -> None:
    path = tmp_path / "train.jsonl"
    _write(path, examples)
    expected = _expected(examples)
    assert expected["missing_system"] == 40 and expected["missing_user"] == 18
    assert _found(path) == expected
    # The counts are read from the conversation's own: the conversation total is unchanged.
    report = analyze(path, workers=1)
    assert report.assistant_tokens.total < report.tokens.total


def test_append_agrees_with_full_analysis(tmp_path: Path, examples: list[dict[str, Any]]) -> None:
    path, cache = tmp_path / "train.jsonl", tmp_path / "cache"
    _write(path, examples[:70])
    assert _found(path, cache_dir=cache, block_rule=RULE) == _expected(examples[:70])
    _write(path, examples)  # an append: the first blocks and the checkpoint are reused
    assert _found(path, cache_dir=cache, block_rule=RULE) == _expected(examples)
    assert _found(path) == _expected(examples)


def test_entries_of_the_old_format_are_not_trusted(tmp_path: Path,
                                                  examples: list[dict[str, Any]]) -> None:
    """A block entry or a whole-file report that an older ftops saved, without the new sums,
    is a miss: the run counts again rather than trusting (or failing on) it."""
    path, cache = tmp_path / "train.jsonl", tmp_path / "cache"
    _write(path, examples[:20])
    settings = make_settings("chat", "o200k_base", None, 50, 8 * 1024**3)
    body = blocks.encode_scan(scan_lines(path.read_bytes(), settings,
                                         new_counter("o200k_base")), "k")
    head, _, raw = body.partition(b"\n")
    old = {k: v for k, v in json.loads(head).items() if not k.startswith(("assistant", "miss"))}
    assert blocks.decode_scan(json.dumps({**old, "format": 1}).encode() + b"\n" + raw,
                              "k") is None
    # The report the previous format saved for this very file, under the name it used.
    identity = datacache.identify(path, settle=True)
    report = analyze(path, workers=1).to_dict()
    stale = {k: v for k, v in report.items()
             if k not in ("assistant_tokens", "missing_system", "missing_user")}
    datacache.save(cache, f"report-{datacache.key(identity.path, asdict(settings))}", stale,
                   identity)
    assert _found(path, cache_dir=cache) == _expected(examples[:20])


def test_validate_shows_assistant_tokens(tmp_path: Path, examples: list[dict[str, Any]]) -> None:
    path = tmp_path / "train.jsonl"
    _write(path, examples)
    expected = _expected(examples)
    report = validate((path,), specs=tmp_path / "specs")
    line = (f"  assistant tokens: min {expected['min']:,}, mean {expected['mean']:,.1f}, "
            f"max {expected['max']:,}, total {expected['total']:,}; no system message: "
            f"{expected['missing_system']}, no user message: {expected['missing_user']}")
    assert line in report.to_text().splitlines()


def test_assistant_tokens_encode_nothing_again(tmp_path: Path, examples: list[dict[str, Any]],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The assistant pass reads the counts the conversation's count made: the encoder is called
    as often as without it, long replies (not in the counter's cache) included."""
    path = tmp_path / "train.jsonl"
    _write(path, examples)
    settings = make_settings("chat", "o200k_base", None, 50, 8 * 1024**3)

    def encodes() -> int:
        counter = new_counter("o200k_base")
        calls, count = [0], counter._count

        def counting(text: str) -> int:
            calls[0] += 1
            return count(text)

        counter._count = counting
        scan_lines(path.read_bytes(), settings, counter)
        return calls[0]

    with_assistant = encodes()
    monkeypatch.setattr(lines, "_roles", lambda *_: 0)
    assert encodes() == with_assistant
