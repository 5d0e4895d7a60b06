"""Whole-file results: the scans of consecutive ranges merged in line order (with duplicates
found across them), the whole-file checks, and the report they make."""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field, replace

from ftops.datasets.index import DigestIndex
from ftops.datasets.lines import Scan, Settings
from ftops.datasets.report import DatasetReport, TokenStats
from ftops.errors import Diagnostic, Severity

MIN_EXAMPLES = 10
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


@dataclass
class Totals:
    """Merges the scans of consecutive ranges into one report, in line order."""

    settings: Settings
    keep_digests: bool = False  # for the cache, which find_overlap reads
    lines: int = 0
    examples: int = 0
    errors: list[Diagnostic] = field(default_factory=list)
    error_count: int = 0
    too_long: list[Diagnostic] = field(default_factory=list)
    too_long_count: int = 0
    duplicates: list[Diagnostic] = field(default_factory=list)
    duplicate_count: int = 0
    counted: int = 0
    total: int = 0
    min: int = 0
    max: int = 0
    billable: int = 0
    assistant: int = 0
    assistant_min: int = 0
    assistant_max: int = 0
    missing_system: int = 0
    missing_user: int = 0
    seen: DigestIndex = field(default_factory=DigestIndex)
    digests: array[int] = field(default_factory=lambda: array("Q"))
    digest_lines: array[int] = field(default_factory=lambda: array("Q"))

    def add(self, scan: Scan) -> None:
        offset, cap = self.lines, self.settings.max_errors
        self.lines += scan.lines
        self.examples += scan.examples
        self.error_count += scan.error_count
        self.errors += _shifted(scan.errors, offset, cap - len(self.errors))
        self.too_long_count += scan.too_long_count
        self.too_long += _shifted(scan.too_long, offset, cap - len(self.too_long))
        if scan.counted:
            first = self.counted == 0
            self.min = scan.min if first else min(self.min, scan.min)
            self.max = scan.max if first else max(self.max, scan.max)
            low, high = scan.assistant_min, scan.assistant_max
            self.assistant_min = low if first else min(self.assistant_min, low)
            self.assistant_max = high if first else max(self.assistant_max, high)
        self.counted += scan.counted
        self.total += scan.total
        self.billable += scan.billable
        self.assistant += scan.assistant
        self.missing_system += scan.missing_system
        self.missing_user += scan.missing_user
        for digest, local in zip(scan.digests, scan.digest_lines, strict=True):
            line = local + offset
            earlier = self.seen.add(digest, line)
            if earlier is not None:
                self.duplicate_count += 1
                if len(self.duplicates) < cap:
                    self.duplicates.append(Diagnostic("warning", "duplicate_example",
                                                      f"same example as line {earlier}",
                                                      line=line))
            if self.keep_digests:
                self.digests.append(digest)
                self.digest_lines.append(line)

    def snapshot(self) -> bytes:
        """Everything merged so far, for ``restore``: an append resumes from here. A JSON line
        (sums, findings as [line, code, message]), then the index and digests as 8-byte ints."""
        seen, keys, lines = self.seen.state()
        header = {name: getattr(self, name) for name in _SUMS}
        header |= {name: [[f.line, f.code, f.message] for f in getattr(self, name)]
                   for name in _FINDINGS}
        header |= {"seen": seen, "slots": len(keys), "n": len(self.digests)}
        return b"".join([json.dumps(header).encode(), b"\n", keys.tobytes(), lines.tobytes(),
                         array("Q", self.digests).tobytes(),
                         array("Q", self.digest_lines).tobytes()])

    def restore(self, body: bytes) -> bool:
        """Becomes the totals ``snapshot`` saved (digests kept); False if ``body`` is not one."""
        head, _, raw = body.partition(b"\n")
        try:
            header = json.loads(head)
            slots, n = header["slots"], header["n"]
            if len(raw) != 16 * (slots + n):
                return False
            tables = [array("Q") for _ in range(4)]
            cuts = [0, 8 * slots, 16 * slots, 16 * slots + 8 * n, len(raw)]
            for table, start, end in zip(tables, cuts, cuts[1:], strict=False):
                table.frombytes(raw[start:end])
            seen = DigestIndex.restore(header["seen"], tables[0], tables[1])
            sums = {name: int(header[name]) for name in _SUMS}
            findings = {name: [Diagnostic(severity, code, text, line=line)
                               for line, code, text in header[name]]
                        for name, severity in _FINDINGS.items()}
        except (ValueError, KeyError, TypeError):
            return False
        for name, value in {**sums, **findings}.items():
            setattr(self, name, value)
        self.seen, self.digests, self.digest_lines = seen, tables[2], tables[3]
        self.keep_digests = True
        return True

    def report(self, name: str, sha256: str, size: int,
               head: list[Diagnostic]) -> DatasetReport:
        s = self.settings
        if self.examples < MIN_EXAMPLES and not any(f.code == "lfs_pointer" for f in head):
            head = [*head, Diagnostic("error", "too_few_examples", f"file has {self.examples} "
                                      f"example(s); fine-tuning needs at least {MIN_EXAMPLES}",
                                      line=0)]
        stats = TokenStats(self.total, self.min, self.max,
                           self.total / self.counted if self.counted else 0.0, self.counted)
        assistant = TokenStats(self.assistant, self.assistant_min, self.assistant_max,
                               self.assistant / self.counted if self.counted else 0.0,
                               self.counted)
        warnings = sorted(self.too_long + self.duplicates, key=lambda f: (f.line or 0, f.code))
        return DatasetReport(
            path=name,
            format=s.fmt,
            sha256=sha256,
            size=size,
            examples=self.examples,
            tokens=stats,
            assistant_tokens=assistant,
            billable_tokens=self.billable,
            missing_system=self.missing_system,
            missing_user=self.missing_user,
            errors=tuple((head + self.errors)[: s.max_errors]),
            error_count=len(head) + self.error_count,
            warnings=tuple(warnings),
            warning_count=self.too_long_count + self.duplicate_count,
            encoding=s.encoding,
            token_limit=s.token_limit,
        )


_SUMS = ("lines", "examples", "error_count", "too_long_count", "duplicate_count", "counted",
         "total", "min", "max", "billable", "assistant", "assistant_min", "assistant_max",
         "missing_system", "missing_user")
_FINDINGS: dict[str, Severity] = {"errors": "error", "too_long": "warning",
                                  "duplicates": "warning"}


def _shifted(findings: list[Diagnostic], offset: int, room: int) -> list[Diagnostic]:
    """Findings of a range, numbered as lines of the whole file."""
    return [replace(f, line=(f.line or 0) + offset) for f in findings[: max(room, 0)]]


def file_findings(start: bytes, size: int, settings: Settings) -> list[Diagnostic]:
    """Whole-file errors, reported at line 0 before any line's."""
    head = []
    if size > settings.size_limit:
        head.append(Diagnostic("error", "file_too_large", f"file is {size:,} bytes, over the "
                               f"provider's limit of {settings.size_limit:,}; split it", line=0))
    if start.startswith(LFS_POINTER):
        head.append(Diagnostic("error", "lfs_pointer", "file is a Git LFS pointer, not the data; "
                               "run `git lfs pull` before validating", line=0))
    return head
