"""The service-side check of a training or validation file, as done during ``validating_files``.

Deliberately independent of ``ftops.datasets``: a test double that shared the client's validation
code would agree with the client's bugs instead of catching them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftops.emulator.store import open_blob

MIN_EXAMPLES = 10
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True)
class DataCheck:
    examples: int
    tokens: int  # estimate: one token per four bytes of each example line
    problem: str | None  # first problem found, naming its line; None when the file is valid


def check(path: Path, method: str) -> DataCheck:
    """Reads a JSONL file line by line and checks it for ``method`` (supervised, dpo, ...)."""
    examples = 0
    tokens = 0
    with open_blob(path) as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            problem = _check_line(raw, method)
            if problem:
                return DataCheck(examples, tokens, f"line {number}: {problem}")
            examples += 1
            tokens += (len(raw) + 3) // 4
    if examples < MIN_EXAMPLES:
        return DataCheck(
            examples,
            tokens,
            f"the file has {examples} example(s); at least {MIN_EXAMPLES} are required",
        )
    return DataCheck(examples, tokens, None)


def _check_line(raw: bytes, method: str) -> str | None:
    try:
        example = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "not valid UTF-8"
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg})"
    if not isinstance(example, dict):
        return "each line must be a JSON object"
    if method == "dpo":
        return _check_preference(example)
    problem = _check_messages(example.get("messages"), "messages")
    if problem:
        return problem
    if method == "supervised" and not any(m["role"] == "assistant" for m in example["messages"]):
        return "the example has no assistant message"
    return None


def _check_preference(example: dict[str, Any]) -> str | None:
    source = example.get("input")
    if not isinstance(source, dict):
        return "missing 'input' object"
    problem = _check_messages(source.get("messages"), "input.messages")
    if problem:
        return problem
    for key in ("preferred_output", "non_preferred_output"):
        problem = _check_messages(example.get(key), key)
        if problem:
            return problem
        if any(m["role"] != "assistant" for m in example[key]):
            return f"'{key}' must contain only assistant messages"
    return None


def _check_messages(messages: object, where: str) -> str | None:
    if not isinstance(messages, list) or not messages:
        return f"missing '{where}' list"
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"{where}[{index}] is not an object"
        role = message.get("role")
        if role not in _ROLES:
            return f"{where}[{index}] has unrecognized role {role!r}"
        content = message.get("content")
        calls = message.get("tool_calls") or message.get("function_call")
        if not isinstance(content, (str, list)) and not (role == "assistant" and calls):
            return f"{where}[{index}] has no content"
    return None
