"""Blobs read back: a plain file, or the parts of a multipart upload read as one file."""

from __future__ import annotations

import hashlib
import io
import mmap
import os
from pathlib import Path
from typing import Any, BinaryIO


def md5_of(paths: list[Path]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for path in paths:
        if path.stat().st_size:  # mmap refuses empty files
            with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                digest.update(m)
    return digest.hexdigest()


class _Segments(io.RawIOBase):
    """The parts of a multipart upload read as one file, without ever joining them on disk."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        # Opened at once: a delete after this cannot pull bytes away from the reader.
        self._files = [path.open("rb", buffering=0) for path in paths]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: sum(self._sizes)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        offset = self._pos
        for segment, size in zip(self._files, self._sizes, strict=True):
            if offset < size:
                segment.seek(offset)
                count = segment.readinto(buffer) or 0
                self._pos += count
                return count
            offset -= size
        return 0

    def close(self) -> None:
        for segment in self._files:
            segment.close()
        super().close()


def open_blob(path: Path) -> BinaryIO:
    """Opens a blob for reading: a plain file, or the directory of a multipart upload's parts."""
    if path.is_dir():
        return io.BufferedReader(_Segments(sorted(path.iterdir())), buffer_size=1 << 20)
    return path.open("rb")
