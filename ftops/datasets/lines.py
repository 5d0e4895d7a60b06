"""Validation and token counting of a range of whole lines: the one loop that the serial path
(``ftops.datasets.reader``) and the worker processes (``ftops.datasets.parallel``) both run, so
that the two give identical reports.

A range keeps, besides its findings and sums, an 8-byte digest and the line number of each JSON
object, from which ``ftops.datasets.totals`` finds duplicates across ranges.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from dataclasses import dataclass, field, replace
from typing import Any

from ftops import formats, tokens
from ftops.errors import DataError, Diagnostic

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


def new_counter(encoding: str) -> tokens.TokenCounter:
    return tokens.TokenCounter(tokens.get_encoding(encoding))


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
    digests: array[int] = field(default_factory=lambda: array("Q"))
    digest_lines: array[int] = field(default_factory=lambda: array("Q"))


def join(first: Scan, second: Scan, max_errors: int) -> Scan:
    """The scan of ``first``'s lines followed by ``second``'s: what ``scan_lines`` gives for the
    two ranges read as one (findings capped at ``max_errors``, the first ones kept)."""
    offset = first.lines

    def shifted(kept: list[Diagnostic], more: list[Diagnostic]) -> list[Diagnostic]:
        room = max(max_errors - len(kept), 0)
        return kept + [replace(f, line=(f.line or 0) + offset) for f in more[:room]]

    low, high = (first.min, first.max) if first.counted else (second.min, second.max)
    if first.counted and second.counted:
        low, high = min(low, second.min), max(high, second.max)
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
        digests=first.digests + second.digests,
        digest_lines=lines,
    )


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


def _count(scan: Scan, count: int, number: int, settings: Settings) -> None:
    """Adds one example's tokens: its statistics, and what is billed after truncation."""
    if scan.counted == 0:
        scan.min = scan.max = count
    else:
        scan.min, scan.max = min(scan.min, count), max(scan.max, count)
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


def scan_lines(data: bytes, settings: Settings, counter: tokens.TokenCounter) -> Scan:
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
        problems, count = formats.check(settings.fmt, example, counter)
        for code, message in problems:
            error(number, code, message)
        if count is not None:
            _count(scan, count, number, settings)
    return scan
