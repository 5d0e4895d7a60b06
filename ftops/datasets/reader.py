"""Analysis of one dataset, read as a stream of newline-terminated lines: memory grows only by
an 8-byte digest and its line number per example (32 to 64 bytes with the index that finds
duplicates). Files of ``PARALLEL_MIN_BYTES`` or more go to ``ftops.datasets.parallel``.

Reports are cached under ``cache_dir`` (see ``ftops.datacache``) keyed by the file's path, size,
mtime and inode and by every setting that changes them, so re-validating unchanged data costs a
``stat``. A changed file is re-read, but only the blocks of lines not seen before are analysed
again (``ftops.datasets.incremental``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO, TypedDict

from typing_extensions import Unpack  # typing.Unpack is 3.11+; ftops supports 3.10

from ftops import datacache
from ftops.datasets.blocks import FORMAT, Rule
from ftops.datasets.incremental import Options, scan_cached
from ftops.datasets.lines import Settings, make_settings, new_counter, scan_lines
from ftops.datasets.notlines import START_BYTES, not_lines
from ftops.datasets.parallel import scan_parallel
from ftops.datasets.report import DatasetReport
from ftops.datasets.totals import Totals, file_findings
from ftops.datasets.watch import opened

# The Uploads API accepts at most 8 GB per file (openai-api/openapi-fine-tuning.yaml).
MAX_FILE_BYTES = 8 * 1024**3
PARALLEL_MIN_BYTES = 16 * 1024**2
CHUNK_BYTES = 4 * 1024**2


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


class Tuning(TypedDict, total=False):
    """How an analysis runs, not what it finds (tests and benchmarks set these)."""

    size_limit: int  # files over this are an error (default MAX_FILE_BYTES)
    # Processes: None uses every CPU for files of at least PARALLEL_MIN_BYTES and this
    # process otherwise; 1 never starts a process.
    workers: int | None
    chunk_bytes: int  # bytes read at a time (default CHUNK_BYTES)
    block_rule: Rule  # where blocks of the incremental analysis end (default Rule())
    cache_bytes: int  # bound of the cache of blocks (default datacache.BLOCK_CACHE_BYTES)


def analyze(
    path: Path,
    *,
    fmt: str = "chat",
    encoding: str = "o200k_base",
    token_limit: int | None = None,
    max_errors: int = 50,
    cache_dir: Path | None = None,
    **tuning: Unpack[Tuning],
) -> DatasetReport:
    """Validates a JSONL dataset and counts its tokens, reusing a cached report when unchanged
    and the cached analyses of its unchanged blocks of lines otherwise."""
    path = Path(path)
    settings = make_settings(fmt, encoding, token_limit, max_errors,
                             tuning.get("size_limit", MAX_FILE_BYTES))
    identity = datacache.identify(path, settle=cache_dir is not None)
    # FORMAT in the name: a report saved without the assistant sums (format 1) is never read.
    entry = f"report-{datacache.key(identity.path, asdict(settings), FORMAT)}"
    if cache_dir is not None:
        cached = datacache.load(cache_dir, entry, identity)
        if cached is not None:
            return DatasetReport.from_dict({**cached, "path": str(path)})
    commit = None
    with opened(path, identity.size) as stream:  # under a watcher: a progress bar
        start = stream.read(START_BYTES)
        head = file_findings(start, identity.size, settings)
        stream.seek(0)
        totals = Totals(settings, keep_digests=cache_dir is not None)
        sha = hashlib.sha256()
        if any(f.code == "lfs_pointer" for f in head):
            sha.update(stream.read())
        elif cache_dir is not None:
            options = Options(cache_dir, _processes(tuning.get("workers"), identity.size),
                              tuning.get("chunk_bytes", CHUNK_BYTES),
                              tuning.get("block_rule", Rule()),
                              tuning.get("cache_bytes", datacache.BLOCK_CACHE_BYTES))
            commit = scan_cached(path, stream, identity, settings, totals, sha, options)
        else:
            _scan_whole(path, stream, identity.size, settings, totals, sha, tuning)
    report = not_lines(totals.report(str(path), sha.hexdigest(), identity.size, head), start,
                       path)
    if cache_dir is not None and identity.settled and datacache.unchanged(path, identity):
        if commit is not None:
            commit()
        datacache.save(cache_dir, entry, report.to_dict(), identity)
        datacache.save_digests(cache_dir, identity, totals.digests, totals.digest_lines)
    return report


def _scan_whole(path: Path, stream: BinaryIO, size: int, settings: Settings, totals: Totals,
                sha: Any, tuning: Tuning) -> None:
    """Without a cache: the whole file in ranges, by a pool of processes if it is large."""
    chunk_bytes = tuning.get("chunk_bytes", CHUNK_BYTES)
    processes = _processes(tuning.get("workers"), size)
    if processes > 1:
        scan_parallel(path, stream, size, settings, totals, sha, processes, chunk_bytes)
        return
    counter = new_counter(settings.encoding)
    for block in _blocks(stream, chunk_bytes, sha):
        totals.add(scan_lines(block, settings, counter))


def _processes(workers: int | None, size: int) -> int:
    if workers is not None:
        return max(workers, 1)
    if size < PARALLEL_MIN_BYTES:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cpus or 1
