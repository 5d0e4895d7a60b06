"""The baseline of ``validate_bench.py``: the OpenAI cookbook's "Data preparation and analysis for
chat model fine-tuning" notebook (examples/Chat_finetuning_data_prep.ipynb), its steps one line at
a time: its format checks, ``num_tokens_from_messages`` and ``num_assistant_tokens_from_messages``
(a second encode of each assistant message), the three distributions, ``n_too_long`` and the
billing estimate; ``notebook=False`` is the lighter variant earlier runs compared against (no
assistant pass, no distributions). Run in the bench's timed child process only."""

from __future__ import annotations

import hashlib
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

# The notebook's constants (the version whose billing rule caps an example at 4,096 tokens).
MAX_TOKENS_PER_EXAMPLE, TARGET_EPOCHS = 4096, 3
MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES, MIN_DEFAULT_EPOCHS, MAX_DEFAULT_EPOCHS = 100, 25000, 1, 25


def _quantile(ordered: list[int], q: float) -> float:
    """numpy.quantile's default (linear) of sorted values; numpy is not installed here."""
    at = q * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def print_distribution(values: list[int], name: str) -> None:
    """The notebook's, with sorted/statistics for numpy (its "p5 / p95" are quantiles 0.1/0.9)."""
    ordered = sorted(values)
    print(f"\n#### Distribution of {name}:")
    print(f"min / max: {ordered[0]}, {ordered[-1]}")
    print(f"mean / median: {statistics.fmean(values)}, {_quantile(ordered, 0.5)}")
    print(f"p5 / p95: {_quantile(ordered, 0.1)}, {_quantile(ordered, 0.9)}")


def _format_errors(ex: Any, format_errors: dict[str, int]) -> list[dict[str, Any]] | None:
    """The notebook's format checks of one example; its messages, or None if it has none."""
    if not isinstance(ex, dict):
        format_errors["data_type"] += 1
        return None
    messages = ex.get("messages", None)
    if not messages:
        format_errors["missing_messages_list"] += 1
        return None
    for message in messages:
        if "role" not in message or "content" not in message:
            format_errors["message_missing_key"] += 1
        if any(k not in ("role", "content", "name", "function_call", "weight",
                         "tool_calls", "tool_call_id") for k in message):
            format_errors["message_unrecognized_key"] += 1
        if message.get("role", None) not in ("system", "user", "assistant", "tool"):
            format_errors["unrecognized_role"] += 1
        content = message.get("content", None)
        calls = message.get("function_call", None) or message.get("tool_calls", None)
        if (not content and not calls) or not isinstance(content, (str, type(None))):
            format_errors["missing_content"] += 1
    if not any(message.get("role", None) == "assistant" for message in messages):
        format_errors["example_missing_assistant_message"] += 1
    return messages  # type: ignore[no-any-return]


def baseline(path: Path, notebook: bool) -> dict[str, Any]:
    """The cookbook notebook's steps, one line at a time, then a separate hash pass. With
    ``notebook``, all of them (the goal's baseline); without, the lighter method measured before:
    the conversation count only (no assistant pass, counts, distributions or billing)."""
    from ftops.tokens import get_encoding

    encoding = get_encoding("o200k_base")

    def compact(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def num_tokens_from_messages(messages: list[dict[str, Any]], tools: Any) -> int:
        num_tokens = 0  # the notebook's, with ftops's rule for tool calls, tools and None
        for message in messages:
            num_tokens += 3
            for key, value in message.items():
                if isinstance(value, str):
                    num_tokens += len(encoding.encode(value))
                    if key == "name":
                        num_tokens += 1
                elif key in ("tool_calls", "function_call") and value:
                    num_tokens += len(encoding.encode(compact(value)))
        if tools:
            num_tokens += len(encoding.encode(compact(tools)))
        return num_tokens + 3

    def num_assistant_tokens_from_messages(messages: list[dict[str, Any]]) -> int:
        num_tokens = 0  # the notebook's; its encode fails on the None content of a tool call
        for message in messages:
            if message["role"] == "assistant" and isinstance(message["content"], str):
                num_tokens += len(encoding.encode(message["content"]))
        return num_tokens

    format_errors: dict[str, int] = defaultdict(int)
    n_missing_system = n_missing_user = 0
    n_messages, convo_lens, assistant_message_lens = [], [], []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            ex = json.loads(line)
            messages = _format_errors(ex, format_errors)
            if messages is None:
                continue
            convo_lens.append(num_tokens_from_messages(messages, ex.get("tools")))
            if not notebook:
                continue
            if not any(message["role"] == "system" for message in messages):
                n_missing_system += 1
            if not any(message["role"] == "user" for message in messages):
                n_missing_user += 1
            n_messages.append(len(messages))
            assistant_message_lens.append(num_assistant_tokens_from_messages(messages))
    sha = hashlib.sha256()
    with path.open("rb") as data:
        while block := data.read(1 << 20):
            sha.update(block)
    result = {"examples": len(convo_lens), "tokens": sum(convo_lens), "sha256": sha.hexdigest(),
              "errors": sum(format_errors.values())}
    if notebook:
        print("Num examples missing system message:", n_missing_system)
        print("Num examples missing user message:", n_missing_user)
        print_distribution(n_messages, "num_messages_per_example")
        print_distribution(convo_lens, "num_total_tokens_per_example")
        print_distribution(assistant_message_lens, "num_assistant_tokens_per_example")
        n_too_long = sum(length > MAX_TOKENS_PER_EXAMPLE for length in convo_lens)
        print(f"\n{n_too_long} examples may be over the 4096 token limit, they will be truncated")
        _billing(convo_lens)
        result |= {"assistant_tokens": sum(assistant_message_lens),
                   "missing_system": n_missing_system, "missing_user": n_missing_user}
    return result


def _billing(convo_lens: list[int]) -> None:
    """The notebook's pricing and default n_epochs estimate."""
    n_epochs, n_train_examples = TARGET_EPOCHS, len(convo_lens)
    if n_train_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        n_epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_train_examples)
    elif n_train_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        n_epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_train_examples)
    billed = sum(min(MAX_TOKENS_PER_EXAMPLE, length) for length in convo_lens)
    print(f"Dataset has ~{billed} tokens that will be charged for during training")
    print(f"By default, you'll train for {n_epochs} epochs on this dataset")
    print(f"By default, you'll be charged for ~{n_epochs * billed} tokens")
