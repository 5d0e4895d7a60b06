"""Chat Completions with deterministic answers, so evals against the emulator mean something.

A fine-tuned model "remembers" its training data: it answers with the reference reply (the last
assistant message, or the preferred output of a DPO example) of the training example whose
system/user text is most similar to the prompt, by word-set Jaccard similarity; ties go to the
earliest example, and a chained model consults its own data before its parent's. A prompt that
shares no word with any example, and every base model, gets ``GENERIC_REPLY``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import tiktoken
from werkzeug.wrappers import Request

from ftops import catalog, tokens
from ftops.emulator import retirement
from ftops.emulator.common import ApiError, Ctx, Reply, invalid, json_body, required, typed
from ftops.emulator.store import JobRec, Store, open_blob
from ftops.modelid import parse_fine_tuned

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
_STREAM_OPTIONS = ("include_obfuscation", "include_usage")
_EVENT_STREAM = "text/event-stream"
_PADDED = 16  # characters of content plus obfuscation in each streamed chunk, at least


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
    if parse_fine_tuned(model) is not None:  # OpenAI's ft:... or Azure's <base>.ft-<hex>
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
        job = _producer(store, job.model) if parse_fine_tuned(job.model) else None


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
    except (ValueError, RecursionError):  # a training line nested too deeply to read
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
        _check_parts(message.get("content"), f"messages[{index}].content")
    for key, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        value = body.get(key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and not (number and low <= value <= high):
            raise invalid(f"Invalid '{key}': expected {low} to {high}.", key, "invalid_value")
    typed(body, "seed", int)
    typed(body, "tools", list)  # both are counted in the prompt's tokens
    typed(body, "functions", list)
    for key in ("n", "max_tokens", "max_completion_tokens"):
        value = typed(body, key, int)
        if value is not None and value < 1:
            raise invalid(f"Invalid '{key}': expected at least 1.", key, "integer_below_min_value")
    _check_stream(body)
    return body


def _check_parts(content: object, where: str) -> None:
    # The token counter reads every part of a list as an object; anything else is a 400 here,
    # not a crash while counting.
    if isinstance(content, list):
        for index, part in enumerate(content):
            if not isinstance(part, dict):
                raise invalid(
                    f"Invalid type for '{where}[{index}]': expected an object.",
                    f"{where}[{index}]",
                    "invalid_type",
                )


def _check_stream(body: dict[str, Any]) -> None:
    """``stream`` and ``stream_options``, with the service's refusal of options without it."""
    stream = typed(body, "stream", bool)
    options = typed(body, "stream_options", dict)
    if options is None:
        return
    if not stream:
        # The API's own words (its code is null), seen in the wild.
        raise invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    for key in options:
        if key not in _STREAM_OPTIONS:
            name = f"stream_options.{key}"
            raise invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
        typed(options, key, bool, "stream_options.")


def complete(ctx: Ctx, body: dict[str, Any], model: ChatModel) -> Reply:
    """The ChatCompletion ``model`` answers to the parsed ``body``, streamed when asked."""
    counter = _counter(model.encoding)
    reply, finish = answer(model, body["messages"]), "stop"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    encoded = counter.encoding.encode_ordinary(reply)
    if limit is not None and len(encoded) > limit:
        reply, finish, encoded = counter.encoding.decode(encoded[:limit]), "length", encoded[:limit]
    n = body.get("n") or 1
    # Counted as ``ftops validate`` counts a training example: tools, calls and names included.
    prompt = counter.messages(
        body["messages"], tools=body.get("tools"), functions=body.get("functions")
    )
    head: dict[str, Any] = {
        "id": ctx.store.new_id("chatcmpl-", 29),
        "created": int(ctx.now),
        "model": model.id,
        "service_tier": "default",
        "system_fingerprint": "fp_emulator",
    }
    usage = _usage(prompt, len(encoded) * n)
    if body.get("stream"):
        pieces = _pieces(counter.encoding, encoded, reply)
        return _stream(head, pieces, finish, n, body.get("stream_options") or {}, usage)
    message: dict[str, Any] = {
        "role": "assistant", "content": reply, "refusal": None, "annotations": []
    }
    choices = [
        {"index": i, "message": message, "finish_reason": finish, "logprobs": None}
        for i in range(n)
    ]
    return Reply(
        {
            "id": head["id"],
            "object": "chat.completion",
            **{k: head[k] for k in ("created", "model")},
            "choices": choices,
            "usage": usage,
            **{k: head[k] for k in ("service_tier", "system_fingerprint")},
        }
    )


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
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
    }


# streaming -------------------------------------------------------------------------------------
def _pieces(encoding: tiktoken.Encoding, encoded: list[int], reply: str) -> list[str]:
    """``reply`` cut at its token boundaries, as the service streams it. A token that ends inside
    a UTF-8 character is held for the next one, so the pieces join to ``reply`` exactly."""
    pieces: list[str] = []
    pending = b""
    for token in encoded:
        pending += encoding.decode_single_token_bytes(token)
        try:
            pieces.append(pending.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        pending = b""
    if pending:  # a reply cut by max_tokens inside a character: decoded as tiktoken decodes it
        pieces.append(pending.decode("utf-8", errors="replace"))
    # Text tiktoken cannot round-trip (a lone surrogate from the training data) comes whole.
    return pieces if "".join(pieces) == reply else [reply]


def _stream(
    head: dict[str, Any],
    pieces: list[str],
    finish: str,
    n: int,
    options: dict[str, Any],
    usage: dict[str, Any],
) -> Reply:
    """The completion as server-sent events, one ``chat.completion.chunk`` per token and choice,
    then (``include_usage``) a chunk with no choices carrying the usage, then ``[DONE]``.

    The body is rendered whole before it is sent: the answer is known at once, and the server
    then answers a stream like any file body. The SDK reads it the same either way.
    """
    with_usage = bool(options.get("include_usage"))
    events: list[bytes] = []

    def send(choices: list[dict[str, Any]], text: str = "", last: bool = False) -> None:
        chunk: dict[str, Any] = {
            "id": head["id"],
            "object": "chat.completion.chunk",
            **{k: head[k] for k in ("created", "model", "service_tier", "system_fingerprint")},
            "choices": choices,
        }
        if with_usage:  # every chunk says usage: null but the last, as the service does
            chunk["usage"] = usage if last else None
        if options.get("include_obfuscation", True):
            chunk["obfuscation"] = _obfuscation(head["id"], len(events), text)
        body = json.dumps(chunk, separators=(",", ":"), allow_nan=False)
        events.append(b"data: " + body.encode() + b"\n\n")

    for index in range(n):
        deltas = [{"role": "assistant", "content": "", "refusal": None}]
        deltas += [{"content": piece} for piece in pieces]
        for delta in deltas:
            send([{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}],
                 delta["content"] or "")
        send([{"index": index, "delta": {}, "logprobs": None, "finish_reason": finish}])
    if with_usage:
        send([], last=True)
    events.append(b"data: [DONE]\n\n")
    return Reply(io.BytesIO(b"".join(events)), content_type=_EVENT_STREAM)


def _obfuscation(completion_id: str, number: int, text: str) -> str:
    # The service pads each chunk with random characters so that its size does not betray the
    # token it carries; here the padding is derived from the chunk, so answers stay reproducible.
    digest = hashlib.sha256(f"{completion_id}:{number}".encode()).hexdigest()
    return digest[: max(1, _PADDED - len(text))]


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
