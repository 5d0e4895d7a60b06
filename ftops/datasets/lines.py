"""Validation and token counting of a range of whole lines: the one loop that the serial path
(``ftops.datasets.reader``) and the worker processes (``ftops.datasets.parallel``) both run, so
that the two give identical reports.

A range keeps, besides its findings and sums, an 8-byte digest and the line number of each JSON
object, from which ``ftops.datasets.totals`` finds duplicates across ranges.

Besides the tokens of each example, a range sums what the OpenAI cookbook's data-prep notebook
reports: the tokens of its assistant messages (the text of every assistant message, weight 0
ones included; one with only tool calls counts 0) and the examples with no system or no user
message. The assistant counts are read from those the conversation's count made (``Counter``):
nothing is encoded twice.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ftops import formats, tokens
from ftops.errors import DataError, Diagnostic

if TYPE_CHECKING:
    import tiktoken

_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
BOM = b"\xef\xbb\xbf"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (Python writes it for a float that is not finite)")


# Python's json module accepts NaN and Infinity; the JSON standard (and the service) does not.
loads = json.JSONDecoder(parse_constant=_no_constant).decode


@dataclass(frozen=True)
class Settings:
    fmt: str
    encoding: str
    token_limit: int | None
    max_errors: int
    size_limit: int


def make_settings(fmt: str, encoding: str, token_limit: int | None, max_errors: int,
                  size_limit: int) -> Settings:
    if fmt not in formats.FORMATS:
        raise DataError(f"unknown dataset format '{fmt}'",
                        hint=f"expected one of {', '.join(formats.FORMATS)}")
    if encoding not in tokens.BUNDLED_ENCODINGS:
        raise DataError(f"unknown encoding '{encoding}'",
                        hint=f"expected one of {', '.join(tokens.BUNDLED_ENCODINGS)}")
    return Settings(fmt, encoding, token_limit, max(max_errors, 0), size_limit)


class Counter(tokens.TokenCounter):
    """A ``TokenCounter`` that keeps the count of every string of the example being counted until
    ``next_example``: its cache is cleared only between examples, and strings too long for it
    are kept aside for the example. So ``counted`` reads, never encodes, a string of it."""

    def __init__(self, encoding: tiktoken.Encoding | str) -> None:
        super().__init__(encoding)
        self._long: dict[str, int] = {}

    def text(self, text: str) -> int:
        count = self._known.get(text)
        if count is None:
            count = self._count(text)
            (self._known if len(text) <= tokens._CACHE_MAX_CHARS else self._long)[text] = count
        return count

    def next_example(self) -> None:
        if len(self._known) >= tokens._CACHE_ENTRIES:
            self._known.clear()
        if self._long:
            self._long.clear()

    def counted(self, text: str) -> int:
        """The count of a string of this example (encoded only if it was not counted)."""
        count = self._known.get(text)
        if count is None:
            count = self._long.get(text)
        return self.text(text) if count is None else count


def new_counter(encoding: str) -> Counter:
    return Counter(encoding)


@dataclass
class Scan:
    """What one range of lines holds; line numbers are relative to the range."""

    lines: int = 0
    examples: int = 0
    errors: list[Diagnostic] = field(default_factory=list)
    error_count: int = 0
    too_long: list[Diagnostic] = field(default_factory=list)
    too_long_count: int = 0
    counted: int = 0
    total: int = 0
    min: int = 0
    max: int = 0
    billable: int = 0
    assistant: int = 0  # assistant tokens of the counted examples, their sum, min and max
    assistant_min: int = 0
    assistant_max: int = 0
    missing_system: int = 0  # counted examples with no system message
    missing_user: int = 0
    digests: array[int] = field(default_factory=lambda: array("Q"))
    digest_lines: array[int] = field(default_factory=lambda: array("Q"))


def join(first: Scan, second: Scan, max_errors: int) -> Scan:
    """The scan of ``first``'s lines followed by ``second``'s: what ``scan_lines`` gives for the
    two ranges read as one (findings capped at ``max_errors``, the first ones kept)."""
    offset = first.lines

    def shifted(kept: list[Diagnostic], more: list[Diagnostic]) -> list[Diagnostic]:
        room = max(max_errors - len(kept), 0)
        return kept + [replace(f, line=(f.line or 0) + offset) for f in more[:room]]

    low, high = _range(first, second, "min", "max")
    a_low, a_high = _range(first, second, "assistant_min", "assistant_max")
    lines = array("Q", first.digest_lines)
    lines.extend(line + offset for line in second.digest_lines)
    return Scan(
        lines=first.lines + second.lines,
        examples=first.examples + second.examples,
        errors=shifted(first.errors, second.errors),
        error_count=first.error_count + second.error_count,
        too_long=shifted(first.too_long, second.too_long),
        too_long_count=first.too_long_count + second.too_long_count,
        counted=first.counted + second.counted,
        total=first.total + second.total,
        min=low,
        max=high,
        billable=first.billable + second.billable,
        assistant=first.assistant + second.assistant,
        assistant_min=a_low,
        assistant_max=a_high,
        missing_system=first.missing_system + second.missing_system,
        missing_user=first.missing_user + second.missing_user,
        digests=first.digests + second.digests,
        digest_lines=lines,
    )


def _range(first: Scan, second: Scan, low: str, high: str) -> tuple[int, int]:
    """The least of the ``low`` and greatest of the ``high`` fields of the ranges that counted."""
    ranges = [(getattr(s, low), getattr(s, high)) for s in (first, second) if s.counted]
    if not ranges:
        return 0, 0
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def example_digest(example: Any) -> int:
    """8 bytes of BLAKE2b over canonical JSON: key order and spacing do not matter. Never 0."""
    raw = hashlib.blake2b(_canonical(example).encode("ascii"), digest_size=8).digest()
    return int.from_bytes(raw, "little") or 1


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines[-1] == b"":  # the newline that ends the last line does not start another
        lines.pop()
    return lines


def _decode(raw: bytes) -> tuple[Any, tuple[str, str] | None]:
    """One line as a JSON value, or the (code, message) that says why it is not one."""
    try:
        return loads(raw.decode("utf-8")), None
    except UnicodeDecodeError as exc:
        return None, ("non_utf8", f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at byte "
                                  f"{exc.start + 1}; save the file as UTF-8")
    except ValueError as exc:
        reason = getattr(exc, "msg", str(exc))
        column = getattr(exc, "colno", None)
        if raw.startswith(BOM):
            reason, column = "the line starts with a byte order mark; save without BOM", None
        return None, ("invalid_json", f"invalid JSON: {reason}"
                      + (f" at column {column}" if column else ""))
    except RecursionError:
        return None, ("invalid_json", "invalid JSON: nested too deeply to read")


def _conversations(fmt: str, example: dict[str, Any]) -> list[list[Any]]:
    """The message lists of a valid example, each message once."""
    if fmt == "preference":
        return [example["input"]["messages"], example["preferred_output"],
                example["non_preferred_output"]]
    return [example["messages"]]


def _roles(scan: Scan, example: dict[str, Any], fmt: str, counter: Counter) -> int:
    """Counts whether a counted example lacks a system or user message; returns its assistant
    tokens: the text of its assistant messages, counted by the conversation's count."""
    assistant, system, user = 0, False, False
    for messages in _conversations(fmt, example):
        for message in messages:
            role = message.get("role")
            if role == "assistant":
                content = message.get("content")
                if isinstance(content, str):
                    assistant += counter.counted(content)
                elif isinstance(content, list):  # text parts (the notebook takes only strings)
                    assistant += sum(counter.counted(part["text"]) for part in content
                                     if isinstance(part.get("text"), str))
            elif role == "system":
                system = True
            elif role == "user":
                user = True
    scan.missing_system += not system
    scan.missing_user += not user
    return assistant


def _count(scan: Scan, count: int, assistant: int, number: int, settings: Settings) -> None:
    """Adds one example's tokens: its statistics, and what is billed after truncation."""
    if scan.counted == 0:
        scan.min = scan.max = count
        scan.assistant_min = scan.assistant_max = assistant
    else:
        scan.min, scan.max = min(scan.min, count), max(scan.max, count)
        scan.assistant_min = min(scan.assistant_min, assistant)
        scan.assistant_max = max(scan.assistant_max, assistant)
    scan.assistant += assistant
    scan.counted += 1
    scan.total += count
    limit = settings.token_limit
    if limit is not None and count > limit:
        scan.too_long_count += 1
        if len(scan.too_long) < settings.max_errors:
            scan.too_long.append(Diagnostic("warning", "example_too_long", (
                f"example has {count:,} tokens, over the {limit:,}-token limit per example; "
                "the service truncates it"), line=number))
        count = limit
    scan.billable += count


def scan_lines(data: bytes, settings: Settings, counter: Counter) -> Scan:
    """Validates and counts whole lines; the one loop both the serial and parallel paths run."""
    scan = Scan()
    errors = scan.errors

    def error(line: int, code: str, message: str) -> None:
        scan.error_count += 1
        if len(errors) < settings.max_errors:
            errors.append(Diagnostic("error", code, message, line=line))

    lines = _lines(data)
    scan.lines = len(lines)
    for number, raw in enumerate(lines, 1):
        if not raw or raw.isspace():
            error(number, "empty_line", "blank line; remove it (every line must be an example)")
            continue
        scan.examples += 1
        example, problem = _decode(raw)
        if problem is not None:
            error(number, *problem)
            continue
        if not isinstance(example, dict):
            error(number, "not_an_object", f"line is {formats.kind_of(example)}, not a JSON object")
            continue
        scan.digests.append(example_digest(example))
        scan.digest_lines.append(number)
        counter.next_example()
        problems, count = formats.check(settings.fmt, example, counter)
        for code, message in problems:
            error(number, code, message)
        if count is not None:
            assistant = _roles(scan, example, settings.fmt, counter)
            _count(scan, count, assistant, number, settings)
    return scan
