"""Whole-file writes that readers never see half done: the lock, caches, the emulator's state."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# What a write puts in the file: bytes, text (UTF-8, newlines kept as given) or a function that
# writes to the open binary file (for content streamed in chunks, too large to hold at once).
Content = bytes | str | Callable[[BinaryIO], object]

# A plain ``open(path, "w")`` creates files with this mode less the umask; the temporary file is
# created the same way (mkstemp's 0o600 would make every rewritten file private).
_NEW_FILE_MODE = 0o666


def write_atomic(path: Path, data: Content, *, durable: bool = True) -> None:
    """Replaces ``path`` with ``data`` in one rename: readers see the old file or the new one.

    The temporary file is a sibling of ``path`` because a rename is atomic only within one file
    system; it is removed when writing fails, and the old file is left as it was. An existing
    file keeps its permissions. ``durable`` flushes the data to disk before the rename, so a
    crash cannot leave the new name on an empty file; caches and the emulator pass False: losing
    them costs a recomputation, while syncing each write costs real time (large blobs, every
    request).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 _NEW_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            if callable(data):
                data(out)
            else:
                out.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _keep_mode(path: Path, tmp: Path) -> None:
    """Gives ``tmp`` the permissions of the file it replaces, as writing in place would keep."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    os.chmod(tmp, mode)
