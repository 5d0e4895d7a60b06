"""A progress bar on stderr for reads of big files, and the one rule of when to show it: on a
terminal only, never in CI logs (``CI`` set) nor under ``--json``.

A dozen lines of our own rather than ``click.progressbar``: views import no click (the
``pure`` contract in .importlinter), and the bar follows bytes read by ``ftops.datasets``
through a watcher callback, which click's iterator-driven bar does not fit.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from ftops.datasets.watch import watching

BIG_BYTES = 16 * 1024**2  # files smaller than this read in well under a second: no bar
WIDTH = 30
_EVERY_SECONDS = 0.1  # redraws at most this often


def wanted(stream: TextIO, *, as_json: bool = False,
           environ: Mapping[str, str] | None = None) -> bool:
    """Whether to draw bars on ``stream``: a terminal, outside CI, and not for a machine."""
    env = os.environ if environ is None else environ
    if as_json or env.get("CI"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def bar_text(label: str, done: int, total: int) -> str:
    """``label [#####-----]  50%  8.0/16.0 MB``."""
    share = min(done / total, 1.0) if total else 1.0
    filled = round(share * WIDTH)
    return (f"{label} [{'#' * filled}{'-' * (WIDTH - filled)}] {share:4.0%} "
            f"{done / 1e6:.1f}/{total / 1e6:.1f} MB")


class Bars:
    """One bar per big file read, redrawn in place with ``\\r`` and ended by a newline."""

    def __init__(self, stream: TextIO, *, min_bytes: int | None = None) -> None:
        self.stream = stream
        self.min_bytes = BIG_BYTES if min_bytes is None else min_bytes
        self.drawn: dict[tuple[str, Path], float] = {}  # -> when its bar was last drawn
        self._lock = threading.Lock()  # parallel uploads report from several threads

    def __call__(self, path: Path, done: int, total: int, verb: str = "reading") -> None:
        key = (verb, path)
        with self._lock:
            if total < self.min_bytes or (done >= total and key not in self.drawn):
                return  # small, or its bar already ended (or it went before a first draw)
            now = time.monotonic()
            if done < total and now - self.drawn.get(key, 0.0) < _EVERY_SECONDS:
                return
            self.drawn[key] = now
            self.stream.write("\r" + bar_text(f"{verb} {path.name}", done, total))
            if done >= total:
                self.stream.write("\n")
                del self.drawn[key]
            self.stream.flush()

    def close(self) -> None:
        if self.drawn:  # a read that failed half-way: end its line
            self.stream.write("\n")
            self.stream.flush()
            self.drawn.clear()


@contextlib.contextmanager
def shown(stream: TextIO, *, as_json: bool = False,
          environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """Bars on ``stream`` for the big files read meanwhile, when ``wanted``; else nothing."""
    if not wanted(stream, as_json=as_json, environ=environ):
        yield
        return
    bars = Bars(stream)
    try:
        with watching(bars):
            yield
    finally:
        bars.close()
