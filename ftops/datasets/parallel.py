"""Large files: byte ranges cut at line boundaries, scanned by a pool of processes while this
process computes the SHA-256, and merged in line order."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ftops import tokens
from ftops.datasets.lines import Counter, Scan, Settings, new_counter, scan_lines
from ftops.datasets.totals import Totals

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


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


_worker_counter: Counter | None = None


def _worker_start(encoding: str) -> None:
    global _worker_counter
    _worker_counter = new_counter(encoding)


def worker_scan(path: str, start: int, end: int, settings: Settings) -> Scan:
    """Run in a worker of ``open_pool``: the scan of bytes ``start`` to ``end`` of ``path``."""
    assert _worker_counter is not None  # set by the pool initializer
    with open(path, "rb") as stream:
        stream.seek(start)
        return scan_lines(stream.read(end - start), settings, _worker_counter)


def worker_ready() -> None:
    """A task that only makes a pool start its workers (which then make their token counter)."""


def open_pool(settings: Settings, workers: int) -> ProcessPoolExecutor:
    """Worker processes that each hold a token counter for ``settings.encoding``."""
    # Imported here: multiprocessing costs every command that loads a project (plan, apply)
    # tens of milliseconds, and only a large file not found in the cache needs it.
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # fork where it is safe (Linux): no re-import, and no `if __name__ == "__main__"` needed in
    # callers' scripts. The pool forks its workers before starting its own threads.
    fork = sys.platform == "linux"
    context = get_context("fork" if fork else "spawn")
    if fork and workers > 1:
        # Loaded once here, the tokenizer is inherited: each worker would otherwise load its own
        # copy. One worker loads its own, in parallel with this process (the hashing of an
        # append's prefix).
        tokens.count_function(settings.encoding)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start,
                               initargs=(settings.encoding,))


def scan_parallel(path: Path, stream: BinaryIO, size: int, settings: Settings, totals: Totals,
                  sha: Any, workers: int, chunk_bytes: int) -> None:
    """Ranges go to worker processes; this process hashes the file meanwhile, then merges."""
    offsets = _boundaries(stream, size, chunk_bytes)
    stream.seek(0)
    ranges = list(itertools.pairwise(offsets))
    with open_pool(settings, min(workers, max(len(ranges), 1))) as pool:
        futures = [pool.submit(worker_scan, str(path), a, b, settings) for a, b in ranges]
        while block := stream.read(chunk_bytes):
            sha.update(block)
        for future in futures:
            totals.add(future.result())
