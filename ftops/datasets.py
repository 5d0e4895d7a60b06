"""Training data analysis: validation, SHA-256, token statistics and duplicates, in one pass.

A file is read as a stream of newline-terminated lines; memory grows only by an 8-byte digest
and its line number per example (32 to 64 bytes with the index that finds duplicates).
Large files are split into byte ranges at line boundaries and analysed by a pool of processes
while this process computes the SHA-256; both paths share ``_scan`` and give identical reports.

Reports are cached under ``cache_dir`` (see ``ftops.datacache``) keyed by the file's path, size,
mtime and inode and by every setting that changes them, so re-validating unchanged data costs a
``stat``; a changed file is always re-read.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
from array import array
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, BinaryIO

from ftops import datacache, formats, tokens
from ftops.cost import billed_tokens, default_epochs, estimate_cost_usd
from ftops.errors import Diagnostic, FtopsError

__all__ = [
    "DatasetReport",
    "Finding",
    "TokenStats",
    "analyze",
    "analyze_bytes",
    "billed_tokens",
    "default_epochs",
    "estimate_cost_usd",
    "find_overlap",
]

# The Uploads API accepts at most 8 GB per file (openai-api/openapi-fine-tuning.yaml).
MAX_FILE_BYTES = 8 * 1024**3
MIN_EXAMPLES = 10
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
PARALLEL_MIN_BYTES = 16 * 1024**2
CHUNK_BYTES = 4 * 1024**2

_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
BOM = b"\xef\xbb\xbf"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (Python writes it for a float that is not finite)")


# Python's json module accepts NaN and Infinity; the JSON standard (and the service) does not.
_loads = json.JSONDecoder(parse_constant=_no_constant).decode


@dataclass(frozen=True)
class Finding:
    """One error or warning on one line (1-based; 0 for the whole file)."""

    line: int
    code: str
    message: str


@dataclass(frozen=True)
class TokenStats:
    """Tokens per example, over the ``counted`` examples that have no errors."""

    total: int
    min: int
    max: int
    mean: float
    counted: int = 0


@dataclass(frozen=True)
class DatasetReport:
    path: str
    format: str
    sha256: str
    size: int
    examples: int
    tokens: TokenStats
    billable_tokens: int  # sum over examples of min(token_limit, tokens); = total if no limit
    errors: tuple[Finding, ...]  # at most max_errors, in line order
    error_count: int  # all errors, counted
    warnings: tuple[Finding, ...]  # at most max_errors of each code, in line order
    warning_count: int = 0  # all warnings, counted
    encoding: str = "o200k_base"
    token_limit: int | None = None

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Errors then warnings as ``path:line: code: message`` diagnostics."""
        return tuple(
            Diagnostic(self.path, f.line or None, f"{f.code}: {f.message}", f.code)
            for f in self.errors + self.warnings
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetReport:
        return cls(
            **{
                **data,
                "tokens": TokenStats(**data["tokens"]),
                "errors": tuple(Finding(**f) for f in data["errors"]),
                "warnings": tuple(Finding(**f) for f in data["warnings"]),
            }
        )


@dataclass(frozen=True)
class _Settings:
    fmt: str
    encoding: str
    token_limit: int | None
    max_errors: int
    size_limit: int


@dataclass
class _Scan:
    """What one range of lines holds; line numbers are relative to the range."""

    lines: int = 0
    examples: int = 0
    errors: list[Finding] = field(default_factory=list)
    error_count: int = 0
    too_long: list[Finding] = field(default_factory=list)
    too_long_count: int = 0
    counted: int = 0
    total: int = 0
    min: int = 0
    max: int = 0
    billable: int = 0
    digests: array[int] = field(default_factory=lambda: array("Q"))
    digest_lines: array[int] = field(default_factory=lambda: array("Q"))


def _digest(example: Any) -> int:
    """8 bytes of BLAKE2b over canonical JSON: key order and spacing do not matter. Never 0."""
    raw = hashlib.blake2b(_canonical(example).encode("ascii"), digest_size=8).digest()
    return int.from_bytes(raw, "little") or 1


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines[-1] == b"":  # the newline that ends the last line does not start another
        lines.pop()
    return lines


def _scan(data: bytes, settings: _Settings, counter: tokens.TokenCounter) -> _Scan:
    """Validates and counts whole lines; the one loop both the serial and parallel paths run."""
    scan = _Scan()
    cap, limit, fmt = settings.max_errors, settings.token_limit, settings.fmt
    errors = scan.errors

    def error(line: int, code: str, message: str) -> None:
        scan.error_count += 1
        if len(errors) < cap:
            errors.append(Finding(line, code, message))

    lines = _lines(data)
    scan.lines = len(lines)
    for number, raw in enumerate(lines, 1):
        if not raw or raw.isspace():
            error(number, "empty_line", "blank line; remove it (every line must be an example)")
            continue
        scan.examples += 1
        try:
            example = _loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            error(number, "non_utf8", f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at byte "
                  f"{exc.start + 1}; save the file as UTF-8")
            continue
        except ValueError as exc:
            reason = getattr(exc, "msg", str(exc))
            column = getattr(exc, "colno", None)
            if raw.startswith(BOM):
                reason, column = "the line starts with a byte order mark; save without BOM", None
            error(number, "invalid_json", f"invalid JSON: {reason}"
                  + (f" at column {column}" if column else ""))
            continue
        except RecursionError:
            error(number, "invalid_json", "invalid JSON: nested too deeply to read")
            continue
        if not isinstance(example, dict):
            error(number, "not_an_object", f"line is {formats.kind_of(example)}, not a JSON object")
            continue
        scan.digests.append(_digest(example))
        scan.digest_lines.append(number)
        problems, count = formats.check(fmt, example, counter)
        for code, message in problems:
            error(number, code, message)
        if count is None:
            continue
        if scan.counted == 0:
            scan.min = scan.max = count
        else:
            scan.min, scan.max = min(scan.min, count), max(scan.max, count)
        scan.counted += 1
        scan.total += count
        if limit is not None and count > limit:
            scan.too_long_count += 1
            if len(scan.too_long) < cap:
                scan.too_long.append(Finding(number, "example_too_long", (
                    f"example has {count:,} tokens, over the {limit:,}-token limit per example; "
                    "the service truncates it")))
            count = limit
        scan.billable += count
    return scan


class _DigestIndex:
    """Digest -> first line, as open addressing over two flat arrays kept at most half full:
    16 bytes a slot where a dict takes about 100 bytes an entry (ints and table included)."""

    def __init__(self) -> None:
        self._size = 0
        self._keys = array("Q", bytes(8 * 1024))
        self._lines = array("Q", bytes(8 * 1024))

    def add(self, digest: int, line: int) -> int | None:
        """Records ``digest`` at ``line`` unless seen before; returns the earlier line if it was."""
        keys = self._keys
        mask = len(keys) - 1
        slot = digest & mask
        while keys[slot]:
            if keys[slot] == digest:
                return self._lines[slot]
            slot = (slot + 1) & mask
        keys[slot] = digest
        self._lines[slot] = line
        self._size += 1
        if 2 * self._size > len(keys):
            self._grow()
        return None

    def get(self, digest: int) -> int | None:
        keys = self._keys
        mask = len(keys) - 1
        slot = digest & mask
        while keys[slot]:
            if keys[slot] == digest:
                return self._lines[slot]
            slot = (slot + 1) & mask
        return None

    def _grow(self) -> None:
        old = zip(self._keys, self._lines, strict=True)
        self._keys = array("Q", bytes(16 * len(self._keys)))
        self._lines = array("Q", bytes(8 * len(self._keys)))
        self._size = 0
        for digest, line in old:
            if digest:
                self.add(digest, line)


@dataclass
class _Totals:
    """Merges the scans of consecutive ranges into one report, in line order."""

    settings: _Settings
    keep_digests: bool = False  # for the cache, which find_overlap reads
    lines: int = 0
    examples: int = 0
    errors: list[Finding] = field(default_factory=list)
    error_count: int = 0
    too_long: list[Finding] = field(default_factory=list)
    too_long_count: int = 0
    duplicates: list[Finding] = field(default_factory=list)
    duplicate_count: int = 0
    counted: int = 0
    total: int = 0
    min: int = 0
    max: int = 0
    billable: int = 0
    seen: _DigestIndex = field(default_factory=_DigestIndex)
    digests: array[int] = field(default_factory=lambda: array("Q"))
    digest_lines: array[int] = field(default_factory=lambda: array("Q"))

    def add(self, scan: _Scan) -> None:
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
        self.counted += scan.counted
        self.total += scan.total
        self.billable += scan.billable
        for digest, local in zip(scan.digests, scan.digest_lines, strict=True):
            line = local + offset
            earlier = self.seen.add(digest, line)
            if earlier is not None:
                self.duplicate_count += 1
                if len(self.duplicates) < cap:
                    self.duplicates.append(Finding(line, "duplicate_example",
                                                   f"same example as line {earlier}"))
            if self.keep_digests:
                self.digests.append(digest)
                self.digest_lines.append(line)

    def report(self, name: str, sha256: str, size: int, head: list[Finding]) -> DatasetReport:
        s = self.settings
        if self.examples < MIN_EXAMPLES and not any(f.code == "lfs_pointer" for f in head):
            head = [*head, Finding(0, "too_few_examples", f"file has {self.examples} "
                                   f"example(s); fine-tuning needs at least {MIN_EXAMPLES}")]
        stats = TokenStats(self.total, self.min, self.max,
                           self.total / self.counted if self.counted else 0.0, self.counted)
        warnings = sorted(self.too_long + self.duplicates, key=lambda f: (f.line, f.code))
        return DatasetReport(
            path=name,
            format=s.fmt,
            sha256=sha256,
            size=size,
            examples=self.examples,
            tokens=stats,
            billable_tokens=self.billable,
            errors=tuple((head + self.errors)[: s.max_errors]),
            error_count=len(head) + self.error_count,
            warnings=tuple(warnings),
            warning_count=self.too_long_count + self.duplicate_count,
            encoding=s.encoding,
            token_limit=s.token_limit,
        )


def _shifted(findings: list[Finding], offset: int, room: int) -> list[Finding]:
    return [Finding(f.line + offset, f.code, f.message) for f in findings[: max(room, 0)]]


def _head(start: bytes, size: int, settings: _Settings) -> list[Finding]:
    """Whole-file errors, reported at line 0 before any line's."""
    head = []
    if size > settings.size_limit:
        head.append(Finding(0, "file_too_large", f"file is {size:,} bytes, over the provider's "
                            f"limit of {settings.size_limit:,}; split it"))
    if start.startswith(LFS_POINTER):
        head.append(Finding(0, "lfs_pointer", "file is a Git LFS pointer, not the data; run "
                            "`git lfs pull` before validating"))
    return head


def _settings(fmt: str, encoding: str, token_limit: int | None, max_errors: int,
              size_limit: int) -> _Settings:
    if fmt not in formats.FORMATS:
        raise FtopsError(f"unknown dataset format '{fmt}'",
                         hint=f"expected one of {', '.join(formats.FORMATS)}")
    if encoding not in tokens.BUNDLED_ENCODINGS:
        raise FtopsError(f"unknown encoding '{encoding}'",
                         hint=f"expected one of {', '.join(tokens.BUNDLED_ENCODINGS)}")
    return _Settings(fmt, encoding, token_limit, max(max_errors, 0), size_limit)


def _counter(encoding: str) -> tokens.TokenCounter:
    return tokens.TokenCounter(tokens.get_encoding(encoding))


def _blocks(stream: BinaryIO, chunk_bytes: int, sha: Any) -> Iterator[bytes]:
    """Whole lines, about ``chunk_bytes`` at a time, hashing every byte on the way."""
    rest: list[bytes] = []
    while block := stream.read(chunk_bytes):
        sha.update(block)
        cut = block.rfind(b"\n") + 1
        if cut == 0:  # a line longer than a block
            rest.append(block)
            continue
        yield b"".join([*rest, block[:cut]])
        rest = [block[cut:]]
    if tail := b"".join(rest):
        yield tail


def analyze_bytes(
    data: bytes,
    *,
    fmt: str = "chat",
    name: str = "<upload>",
    encoding: str = "o200k_base",
    token_limit: int | None = None,
    max_errors: int = 50,
    size_limit: int = MAX_FILE_BYTES,
) -> DatasetReport:
    """``analyze`` for data already in memory (an uploaded file); ``name`` labels the report."""
    settings = _settings(fmt, encoding, token_limit, max_errors, size_limit)
    head = _head(data[: len(LFS_POINTER)], len(data), settings)
    totals = _Totals(settings)
    if not any(f.code == "lfs_pointer" for f in head):
        totals.add(_scan(data, settings, _counter(encoding)))
    return totals.report(name, hashlib.sha256(data).hexdigest(), len(data), head)


def analyze(
    path: Path,
    *,
    fmt: str = "chat",
    encoding: str = "o200k_base",
    token_limit: int | None = None,
    max_errors: int = 50,
    cache_dir: Path | None = None,
    size_limit: int = MAX_FILE_BYTES,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> DatasetReport:
    """Validates a JSONL dataset and counts its tokens, reusing a cached report when unchanged.

    ``workers``: processes for the analysis; None uses every CPU for files of at least
    ``PARALLEL_MIN_BYTES`` and this process otherwise; 1 never starts a process.
    """
    path = Path(path)
    settings = _settings(fmt, encoding, token_limit, max_errors, size_limit)
    identity = datacache.identify(path, settle=cache_dir is not None)
    entry = f"report-{datacache.key(identity.path, asdict(settings))}"
    if cache_dir is not None:
        cached = datacache.load(cache_dir, entry, identity)
        if cached is not None:
            return DatasetReport.from_dict({**cached, "path": str(path)})
    with path.open("rb") as stream:
        head = _head(stream.read(len(LFS_POINTER)), identity.size, settings)
        stream.seek(0)
        totals = _Totals(settings, keep_digests=cache_dir is not None)
        sha = hashlib.sha256()
        processes = _processes(workers, identity.size)
        if any(f.code == "lfs_pointer" for f in head):
            sha.update(stream.read())
        elif processes > 1:
            _scan_parallel(path, stream, identity.size, settings, totals, sha, processes,
                           chunk_bytes)
        else:
            counter = _counter(encoding)
            for block in _blocks(stream, chunk_bytes, sha):
                totals.add(_scan(block, settings, counter))
    report = totals.report(str(path), sha.hexdigest(), identity.size, head)
    if cache_dir is not None and datacache.unchanged(path, identity):
        datacache.save(cache_dir, entry, report.to_dict(), identity)
        datacache.save_digests(cache_dir, identity, totals.digests, totals.digest_lines)
    return report


def _processes(workers: int | None, size: int) -> int:
    if workers is not None:
        return max(workers, 1)
    if size < PARALLEL_MIN_BYTES:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cpus or 1


def _boundaries(stream: BinaryIO, size: int, chunk_bytes: int) -> list[int]:
    """Offsets that start a line, about ``chunk_bytes`` apart, from 0 to ``size``."""
    offsets = [0]
    while offsets[-1] + chunk_bytes < size:
        stream.seek(offsets[-1] + chunk_bytes - 1)
        while (piece := stream.read(65536)) and (cut := piece.find(b"\n")) < 0:
            pass
        if not piece:
            break
        offsets.append(stream.tell() - len(piece) + cut + 1)
    if offsets[-1] < size:
        offsets.append(size)
    return offsets


_worker_counter: tokens.TokenCounter | None = None


def _worker_start(encoding: str) -> None:
    global _worker_counter
    _worker_counter = _counter(encoding)


def _worker_scan(path: str, start: int, end: int, settings: _Settings) -> _Scan:
    assert _worker_counter is not None  # set by the pool initializer
    with open(path, "rb") as stream:
        stream.seek(start)
        return _scan(stream.read(end - start), settings, _worker_counter)


def _scan_parallel(path: Path, stream: BinaryIO, size: int, settings: _Settings, totals: _Totals,
                   sha: Any, workers: int, chunk_bytes: int) -> None:
    """Ranges go to worker processes; this process hashes the file meanwhile, then merges."""
    offsets = _boundaries(stream, size, chunk_bytes)
    stream.seek(0)
    ranges = list(itertools.pairwise(offsets))
    # fork where it is safe (Linux): no re-import, and no `if __name__ == "__main__"` needed in
    # callers' scripts. The pool forks its workers before starting its own threads.
    context = get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(min(workers, max(len(ranges), 1)), mp_context=context,
                             initializer=_worker_start, initargs=(settings.encoding,)) as pool:
        futures = [pool.submit(_worker_scan, str(path), a, b, settings) for a, b in ranges]
        while block := stream.read(chunk_bytes):
            sha.update(block)
        for future in futures:
            totals.add(future.result())


# --- train/validation overlap ------------------------------------------------------------------


def _file_digests(path: Path, identity: datacache.Identity,
                  cache_dir: Path | None) -> tuple[array[int], array[int]]:
    """Digest and line of every JSON-object line, from the cache when the file is unchanged."""
    cached = datacache.load_digests(cache_dir, identity) if cache_dir is not None else None
    if cached is not None:
        return cached
    digests, lines = array("Q"), array("Q")
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, 1):
            try:
                example = _loads(raw.decode("utf-8"))
            except (ValueError, RecursionError):  # also UnicodeDecodeError; analyze reports these
                continue
            if isinstance(example, dict):
                digests.append(_digest(example))
                lines.append(number)
    if cache_dir is not None:
        datacache.save_digests(cache_dir, identity, digests, lines)
    return digests, lines


def find_overlap(
    train: Path,
    validation: Path,
    *,
    fmt: str = "chat",
    cache_dir: Path | None = None,
    max_findings: int = 50,
) -> tuple[Finding, ...]:
    """``train_validation_overlap`` warnings on the lines of ``validation`` that repeat an
    example of ``train`` (same canonical JSON). Past ``max_findings``, one line-0 finding says how
    many more there are. With ``cache_dir``, digests and results of unchanged files are reused."""
    train, validation = Path(train), Path(validation)
    if fmt not in formats.FORMATS:
        raise FtopsError(f"unknown dataset format '{fmt}'",
                         hint=f"expected one of {', '.join(formats.FORMATS)}")
    ids = (datacache.identify(train, settle=cache_dir is not None),
           datacache.identify(validation, settle=cache_dir is not None))
    entry = f"overlap-{datacache.key(ids[0].path, ids[1].path, max_findings)}"
    if cache_dir is not None:
        cached = datacache.load(cache_dir, entry, *ids)
        if cached is not None:
            return tuple(Finding(**f) for f in cached)
    seen = _DigestIndex()
    for digest, line in zip(*_file_digests(train, ids[0], cache_dir), strict=True):
        seen.add(digest, line)
    findings: list[Finding] = []
    more = 0
    for digest, line in zip(*_file_digests(validation, ids[1], cache_dir), strict=True):
        earlier = seen.get(digest)
        if earlier is None:
            continue
        if len(findings) < max_findings:
            findings.append(Finding(line, "train_validation_overlap",
                                    f"same example as line {earlier} of {train.name}; "
                                    "validation data should be held out"))
        else:
            more += 1
    if more:
        findings.append(Finding(0, "train_validation_overlap",
                                f"{more} more example(s) also appear in {train.name}"))
    if cache_dir is not None:
        datacache.save(cache_dir, entry, [asdict(f) for f in findings], *ids)
    return tuple(findings)
