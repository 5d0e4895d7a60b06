from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st

from ftops.errors import FtopsError
from ftops.tokens import IMAGE_TOKENS, TokenCounter, _load_bundled, count_function, get_encoding

# The example conversation of the OpenAI cookbook's "How to count tokens with tiktoken", whose
# published counts are 129 tokens for gpt-3.5-turbo / gpt-4 and 124 for gpt-4o / gpt-4o-mini.
COOKBOOK_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that "
     "translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user",
     "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant",
     "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more "
     "bandwidth to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant",
     "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for "
     "the client deliverable."},
]


@pytest.mark.parametrize(
    ("encoding", "ids"),
    [("o200k_base", [24912, 2375]), ("cl100k_base", [15339, 1917])],
)
def test_hello_world_token_ids(encoding: str, ids: list[int]) -> None:
    assert get_encoding(encoding).encode("hello world") == ids


@pytest.mark.parametrize(("encoding", "expected"), [("cl100k_base", 129), ("o200k_base", 124)])
def test_cookbook_conversation_counts(encoding: str, expected: int) -> None:
    assert TokenCounter(get_encoding(encoding)).messages(COOKBOOK_MESSAGES) == expected


def test_encodings_build_offline_without_tiktoken_download_or_cache(tmp_path: Path) -> None:
    """A fresh interpreter with sockets disabled and an empty tiktoken cache still gets exact
    encodings, never calls tiktoken.get_encoding and never writes tiktoken's cache."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    script = """
import socket

class NoNetwork(socket.socket):
    def connect(self, *args, **kwargs):
        raise OSError("network is disabled in this test")

socket.socket = NoNetwork
import tiktoken.registry
from ftops.tokens import get_encoding
print(get_encoding("o200k_base").encode("hello world"), get_encoding("cl100k_base").encode("hi"))
print(sorted(tiktoken.registry.ENCODINGS))
"""
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache), "DATA_GYM_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.splitlines() == ["[24912, 2375] [6151]", "[]"]
    assert list(cache.iterdir()) == []


def test_bundled_file_must_match_tiktokens_hash() -> None:
    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    with pytest.raises(FtopsError, match="tiktoken expects 0000") as caught:
        _load_bundled(url, "0" * 64)
    assert "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d" in str(caught.value)


def test_unknown_encoding_is_a_user_error() -> None:
    with pytest.raises(FtopsError, match=r"unknown encoding 'p50k_base'.*o200k_base, cl100k_base"):
        get_encoding("p50k_base")


def _n(text: str) -> int:
    return len(get_encoding("o200k_base").encode(text))


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_text_chat_rule_with_name_and_weight() -> None:
    messages = [
        {"role": "user", "content": "Hi there", "name": "bob"},
        {"role": "assistant", "content": "Hello!", "weight": 0},
    ]
    expected = (3 + _n("user") + _n("Hi there") + _n("bob") + 1) + (
        3 + _n("assistant") + _n("Hello!")
    ) + 3
    assert TokenCounter(get_encoding("o200k_base")).messages(messages) == expected == 17


def test_content_parts_count_text_and_a_fixed_cost_per_image() -> None:
    messages = [
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]},
        {"role": "assistant", "content": "A cat."},
    ]
    expected = 3 + _n("user") + _n("What is this?") + 2 * IMAGE_TOKENS
    expected += 3 + _n("assistant") + _n("A cat.") + 3
    assert IMAGE_TOKENS == 85
    assert TokenCounter(get_encoding("o200k_base")).messages(messages) == expected


def test_tools_and_tool_calls_count_their_compact_json() -> None:
    calls = [{"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    messages = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3 °C"},
    ]
    expected = 3 + _n("user") + _n("Weather in Oslo?")
    expected += 3 + _n("assistant") + _n(_compact(calls))
    expected += 3 + _n("tool") + _n("call_1") + _n("-3 °C")
    expected += 3 + _n(_compact(tools))
    assert TokenCounter(get_encoding("o200k_base")).messages(messages, tools=tools) == expected


def test_special_token_text_counts_as_ordinary_text() -> None:
    counter = TokenCounter(get_encoding("o200k_base"))
    assert counter.text("<|endoftext|>") == len(
        get_encoding("o200k_base").encode("<|endoftext|>", disallowed_special=())
    ) > 1


# Text the tokenizers' pre-splitting treats specially: contractions, digit runs, whitespace runs,
# letters of other scripts, marks, emoji with joiners, and the special tokens' spelling.
_PIECES = st.sampled_from([
    " ", "  ", "\t", "\n", "\r\n", "\u3000", "\xa0", "'s", "'T", "'ll", "’re", "123", "4567",
    "3.14", "a", "Zz", "ß", "İ", "ı", "é", "e\u0301", "中文", "日本", "한국", "Ελλάδα", "مرحبا",
    "😀", "👍🏽", "👩\u200d💻", "\ufe0f", "<|endoftext|>", "<|im_start|>", "!?", "...", "--",
    "\\", '"', "{}", "𝐀", "½", "Ⅻ", "\x00", "\x7f", "\u2028",
])
_TEXT = st.one_of(st.text(), st.lists(_PIECES, max_size=30).map("".join))


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(text=_TEXT)
def test_counting_agrees_with_tiktoken_encode_ordinary(encoding: str, text: str) -> None:
    """The counter counts with bpe-openai's tokenizer: it must give tiktoken's count for any
    text (lone surrogates included, which both read as U+FFFD)."""
    assert count_function(encoding)(text) == len(get_encoding(encoding).encode_ordinary(text))


@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "x" * 200_000, "ab1 " * 50_000])
def test_counting_agrees_on_surrogates_and_long_runs(text: str) -> None:
    counted = TokenCounter("o200k_base").text(text)
    assert counted == len(get_encoding("o200k_base").encode_ordinary(text))
