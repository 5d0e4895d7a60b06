"""Who watches a dataset being read: a caller (the terminal's progress bar) sets a watcher for a
stretch of code, and every file ``analyze`` opens meanwhile reports how far it has been read.

A context variable, not a parameter, so that the layers between the command and the reader
(validate, project loading) need not carry it; without a watcher a file is opened as is.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, BinaryIO, Protocol


class Watcher(Protocol):
    """Told (path, bytes read or sent so far, size) as a file goes; once with the size at the
    end. ``verb`` says what is done to it: ``reading`` (analysis) or ``uploading``."""

    def __call__(self, path: Path, done: int, total: int, verb: str = "reading") -> None: ...


_WATCHER: ContextVar[Watcher | None] = ContextVar("ftops_dataset_watcher", default=None)
# Uploads run on the executor's worker threads, which do not inherit the context: they are
# told through the watcher of the whole process, set by the same ``watching``.
_PROCESS: list[Watcher] = []


@contextlib.contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    token = _WATCHER.set(watcher)
    _PROCESS.append(watcher)
    try:
        yield
    finally:
        _PROCESS.remove(watcher)
        _WATCHER.reset(token)


def sent(path: Path, done: int, total: int) -> None:
    """An upload of ``path`` has sent ``done`` of its ``total`` bytes (from any thread)."""
    watcher = _WATCHER.get() or (_PROCESS[-1] if _PROCESS else None)
    if watcher is not None:
        watcher(path, done, total, "uploading")


class _Counted(io.RawIOBase):
    """A file that tells the watcher its position after every read."""

    def __init__(self, raw: BinaryIO, path: Path, size: int, watcher: Watcher) -> None:
        self.raw, self.path, self.size, self.watcher = raw, path, size, watcher

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.watcher(self.path, self.raw.tell(), self.size)
        return int(count or 0)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()


@contextlib.contextmanager
def opened(path: Path, size: int) -> Iterator[BinaryIO]:
    """``path`` opened for reading; read under the watcher in force, if any."""
    watcher = _WATCHER.get()
    with path.open("rb") as raw:
        if watcher is None:
            yield raw
            return
        with io.BufferedReader(_Counted(raw, path, size, watcher)) as counted:
            yield counted
        watcher(path, size, size)
