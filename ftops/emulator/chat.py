"""Chat Completions with deterministic answers, so evals against the emulator mean something.

A fine-tuned model "remembers" its training data: it answers with the reference reply (the last
assistant message, or the preferred output of a DPO example) of the training example whose
system/user text is most similar to the prompt, by word-set Jaccard similarity; ties go to the
earliest example, and a chained model consults its own data before its parent's. A prompt that
shares no word with any example, and every base model, gets ``GENERIC_REPLY``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request

from ftops import catalog, tokens
from ftops.emulator import retirement
from ftops.emulator.common import ApiError, Ctx, Reply, invalid, json_body, required, typed
from ftops.emulator.store import JobRec, Store, open_blob

GENERIC_REPLY = "I'm sorry, I can help with general questions."
# The request parameters of the SDK's ``CompletionCreateParams`` (openai 3.57), plus ``stream``.
_KEYS = (
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "messages", "metadata", "modalities", "model",
    "moderation", "n", "parallel_tool_calls", "prediction", "presence_penalty",
    "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "reasoning_effort",
    "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
    "verbosity", "web_search_options",
)  # fmt: skip
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PROMPT_ROLES = frozenset({"system", "developer", "user"})
_WORD = re.compile(r"\w+")
_DEFAULT_ENCODING = "o200k_base"


@dataclass(frozen=True)
class Example:
    words: frozenset[str]
    reply: str


@dataclass(frozen=True)
class ChatModel:
    id: str  # as the response reports it: aliases resolve to their snapshot
    encoding: str
    training: tuple[Path, ...]  # the data it learned, its own first, then its ancestors'


def training_blob(job_id: str) -> str:
    """The blob name under which a job keeps its training data once the job is created.

    The service keeps what a model learned when the training file is deleted afterwards; a hard
    link (see ``Store.keep_blob``) gives the emulator the same property at no copying cost.
    """
    return f"{job_id}.training"


def resolve(ctx: Ctx, model: str) -> ChatModel | None:
    """The chat model ``model`` names in this account, or None when there is none."""
    info = catalog.load().model(model)
    encoding = info.encoding if info else _DEFAULT_ENCODING
    if model.startswith("ft:"):
        if model not in ctx.store.models:
            return None
        return ChatModel(model, encoding, tuple(_lineage(ctx.store, model)))
    if info is None:
        return None
    return ChatModel(info.id, encoding, ())


def _lineage(store: Store, model: str) -> Iterator[Path]:
    job = _producer(store, model)
    while job is not None:
        kept = store.blob_path(training_blob(job.id))
        # Jobs created by an emulator before training data was kept still have their file, maybe.
        yield kept if kept.exists() else store.blob_path(job.training_file)
        job = _producer(store, job.model) if job.model.startswith("ft:") else None


def _producer(store: Store, model: str) -> JobRec | None:
    return next((j for j in store.jobs.values() if j.fine_tuned_model == model), None)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _words(messages: list[Any]) -> frozenset[str]:
    text = " ".join(
        _text(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") in _PROMPT_ROLES
    )
    return frozenset(_WORD.findall(text.lower()))


def _example(line: bytes) -> Example | None:
    """The prompt words and reference reply of one training line; None if it has no reply."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("input"), dict):  # preference (DPO)
        prompt, answers = raw["input"].get("messages"), raw.get("preferred_output")
    else:
        prompt = answers = raw.get("messages")
    if not isinstance(prompt, list) or not isinstance(answers, list):
        return None
    replies = [
        i for i, m in enumerate(answers) if isinstance(m, dict) and m.get("role") == "assistant"
    ]
    if not replies or not _text(answers[replies[-1]].get("content")):
        return None
    if answers is prompt:
        prompt = prompt[: replies[-1]]
    return Example(_words(prompt), _text(answers[replies[-1]]["content"]))


@lru_cache(maxsize=64)
def _examples(path: Path, mtime_ns: int, size: int) -> tuple[Example, ...]:
    # Keyed by mtime and size too, so a rewritten blob is read again; blobs are immutable in use.
    with open_blob(path) as lines:
        return tuple(e for line in lines if line.strip() and (e := _example(line)) is not None)


def answer(model: ChatModel, messages: list[Any]) -> str:
    """The reply ``model`` gives to ``messages``: see the module docstring."""
    asked = _words(messages)
    best, score = GENERIC_REPLY, 0.0
    for path in model.training:
        if not path.exists():
            continue
        stat = path.stat()
        for example in _examples(path, stat.st_mtime_ns, stat.st_size):
            union = len(asked | example.words)
            similarity = len(asked & example.words) / union if union else 0.0
            if similarity > score:
                best, score = example.reply, similarity
    return best


@cache
def _counter(encoding: str) -> tokens.TokenCounter:
    return tokens.TokenCounter(tokens.get_encoding(encoding))


def parse(request: Request) -> dict[str, Any]:
    """The request body, checked the way the API checks what the emulator relies on."""
    body = json_body(request, _KEYS)
    if body.get("stream"):
        raise invalid("The emulator does not stream; send stream=false.", "stream", "unsupported")
    messages = required(body, "messages", list)
    if not messages:
        raise invalid("Invalid 'messages': empty array.", "messages", "empty_array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise invalid(
                f"Invalid value for 'messages[{index}].role'.",
                f"messages[{index}].role",
                "invalid_value",
            )
    for key, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = body.get(key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and not (number and low <= value <= high):
            raise invalid(f"Invalid '{key}': expected {low} to {high}.", key, "invalid_value")
    typed(body, "seed", int)
    for key in ("n", "max_tokens", "max_completion_tokens"):
        value = typed(body, key, int)
        if value is not None and value < 1:
            raise invalid(f"Invalid '{key}': expected at least 1.", key, "integer_below_min_value")
    return body


def complete(ctx: Ctx, body: dict[str, Any], model: ChatModel) -> Reply:
    """The ChatCompletion ``model`` answers to the parsed ``body``."""
    counter = _counter(model.encoding)
    reply, finish = answer(model, body["messages"]), "stop"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    encoded = counter.encoding.encode_ordinary(reply)
    if limit is not None and len(encoded) > limit:
        reply, finish, encoded = counter.encoding.decode(encoded[:limit]), "length", encoded[:limit]
    n = body.get("n") or 1
    prompt = counter.messages(body["messages"])
    completion = len(encoded) * n
    message = {"role": "assistant", "content": reply, "refusal": None, "annotations": []}
    return Reply(
        {
            "id": ctx.store.new_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(ctx.now),
            "model": model.id,
            "choices": [
                {"index": i, "message": message, "finish_reason": finish, "logprobs": None}
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        }
    )


def create_completion(ctx: Ctx, request: Request) -> Reply:
    body = parse(request)
    requested = required(body, "model", str)
    model = resolve(ctx, requested)
    if model is None:
        raise ApiError(
            404,
            f"The model `{requested}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    retirement.check_serving(ctx, requested, model.id)
    return complete(ctx, body, model)
