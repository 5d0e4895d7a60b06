"""A file that is one JSON document rather than JSON Lines (a JSON array, or objects printed
over many lines): one error naming the mistake and the command that converts the file, in place
of an ``invalid_json`` error for nearly every line."""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

from ftops.datasets.lines import BOM, loads
from ftops.datasets.report import DatasetReport
from ftops.errors import Diagnostic

START_BYTES = 64 * 1024  # enough of the file to see how it begins and read its first line
LINE_ERRORS_KEPT = 3  # after the one error, these few line errors show what the reader met
_CONSEQUENCES = {"too_few_examples"}  # follow from the file not being lines; left out


def not_lines(report: DatasetReport, start: bytes, path: Path) -> DatasetReport:
    """``report`` with one ``not_jsonl`` error in front of a few of its line errors when the file
    (of which ``start`` is the beginning) is one JSON document; else ``report`` unchanged."""
    line_errors = [e for e in report.errors if e.line]
    kind = _document_kind(start)
    bad = report.error_count - sum(1 for e in report.errors if not e.line)
    if kind is None or not any(e.line == 1 for e in line_errors):
        return report
    what, program, one_line = kind
    if not one_line and bad < 2:  # one broken first line of JSON Lines: its own error says it
        return report
    name = shlex.quote(str(path))
    target = shlex.quote(str(path.with_name(f"{path.stem}.lines.jsonl")))
    hint = Diagnostic(
        "error", "not_jsonl",
        f"file is {what}, not JSON Lines (one JSON object per line), so {bad:,} line(s) fail; "
        f"convert it with `jq -c {shlex.quote(program)} {name} > {target}`", line=0)
    whole = [e for e in report.errors if not e.line and e.code not in _CONSEQUENCES]
    errors = (hint, *whole, *line_errors[:LINE_ERRORS_KEPT])
    return replace(report, errors=errors, error_count=len(errors))


def _document_kind(start: bytes) -> tuple[str, str, bool] | None:
    """(what the file is, the jq program that makes lines of it, whether it is all on its first
    line), or None for JSON Lines (whose lines may still be wrong: ``[]``, say)."""
    text = start.removeprefix(BOM).lstrip()
    if not text.startswith((b"[", b"{")):
        return None
    head = text.split(b"\n", 1)[0]
    try:
        first = loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        if text.startswith(b"["):
            return "one JSON array", ".[]", False
        # A pretty-printer opens the document alone on its first line; a JSON Lines file
        # whose first line is merely broken is not one document.
        if head.strip() == b"{":
            return "a pretty-printed JSON document", ".", False
        return None
    if isinstance(first, list) and any(isinstance(item, dict) for item in first):
        return "one JSON array", ".[]", True
    return None
