"""The service-side check of a training or validation file, as done during ``validating_files``.

Deliberately independent of ``ftops.datasets``: a test double that shared the client's validation
code would agree with the client's bugs instead of catching them.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable
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
    problem: str | None  # first problem of format found, naming its line; None when well-formed

    @property
    def too_few(self) -> bool:
        """Fewer examples than the API trains on (``jobspec`` words the error per file kind)."""
        return self.problem is None and self.examples < MIN_EXAMPLES


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


# The upload-time check -----------------------------------------------------------------------
_OBJECT = object()  # what a JSON object parses to here: nothing of it is kept, only its kind
_DECODER = json.JSONDecoder(object_pairs_hook=lambda _: _OBJECT)
_BLANK = " \t\r"  # JSON whitespace besides the newline that ends a line


def jsonl_problem(chunks: Iterable[bytes]) -> str | None:
    """The first line of the bytes ``chunks`` (a file, in order, cut anywhere) that is not a UTF-8
    JSON object, as ``"line N is not ..."``; None when every non-blank line is one. Reads the
    chunks once and holds one line at most, never the file: uploads reach 8 GiB."""
    lines = _JsonLines()
    for chunk in chunks:
        if not lines.feed(chunk):
            return lines.problem
    lines.feed(b"", final=True)
    return lines.problem


class _JsonLines:
    """Lines checked as their bytes arrive. The bytes are decoded incrementally (a character cut
    between chunks is fine), so a binary file fails at its first bad byte rather than at its
    first newline, which it may never have."""

    def __init__(self) -> None:
        self.problem: str | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pieces: list[str] = []  # the line not yet ended, in pieces: no quadratic joining
        self._number = 0  # lines ended so far

    def feed(self, chunk: bytes, *, final: bool = False) -> bool:
        """Checks the lines ``chunk`` ends; False once a line is bad (``problem`` says which)."""
        pending = self._decoder.getstate()[0]  # the start of a character cut by the last chunk
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            # The bytes before the bad one decode, and a line among them may be bad first; if
            # none is, the bad byte is in the line left open.
            if self._lines((pending + chunk)[: exc.start].decode("utf-8")):
                self._fail(self._number + 1, "is not valid UTF-8")
            return False
        return self._lines(text) and (not final or self._check(["".join(self._pieces)]))

    def _lines(self, text: str) -> bool:
        """Checks the lines ``text`` ends and keeps the one it leaves open."""
        cut = text.find("\n")
        if cut < 0:
            self._pieces.append(text)
            return True
        self._pieces.append(text[:cut])
        ended = ["".join(self._pieces), *text[cut + 1 :].split("\n")]
        self._pieces = [ended.pop()]
        return self._check(ended)

    def _check(self, lines: list[str]) -> bool:
        decode = _DECODER.raw_decode
        for line in lines:
            self._number += 1
            try:  # the common case first, at the speed of the C scanner: an object, nothing else
                value, end = decode(line)
                if value is _OBJECT and end == len(line):
                    continue
            except (ValueError, RecursionError):
                pass
            what = _line_problem(line)  # blank, surrounded by whitespace, or bad: say which
            if what:
                self._fail(self._number, what)
                return False
        return True

    def _fail(self, number: int, what: str) -> None:
        self.problem = f"line {number} {what}"


def _line_problem(line: str) -> str | None:
    body = line.strip(_BLANK)
    if not body:
        return None  # a blank line ends nothing, as ``check`` also skips it
    try:
        value, end = _DECODER.raw_decode(body)
    except (ValueError, RecursionError):
        return "is not valid JSON"
    if end != len(body):  # more after the value: two values on one line, or garbage
        return "is not valid JSON"
    return None if value is _OBJECT else "is not a JSON object"
