"""The analysis cache: results about a data file, reused while the file is unchanged.

An entry is keyed by a name the caller derives from everything that changes the result, and is
valid only for the file identity (path, size, mtime, inode) recorded with it. A file modified
less than one timestamp tick ago cannot be told apart from a later same-size change, so
``identify(settle=True)`` first waits out that tick (at most 20 ms on file systems that keep
sub-second times); a file whose mtime is still not settled (clock skew) is never cached.
Entries are written atomically; a cache directory that cannot be written is silently skipped.
"""

from __future__ import annotations

import hashlib
import json
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftops.atomic import write_atomic
from ftops.errors import DataError

# Bump when a change to the checks or the token rule changes results: old entries then miss.
VERSION = 2
# Coarsest mtime tick assumed where mtimes keep sub-second digits (Linux: one jiffy, <= 10 ms);
# whole-second mtimes mean a coarse file system (FAT keeps 2 s).
_FINE_TICK_NS = 20_000_000
_COARSE_TICK_NS = 2_000_000_000


@dataclass(frozen=True)
class Identity:
    path: str  # resolved
    size: int
    mtime_ns: int
    inode: int
    settled: bool  # False: changed within the current tick, so not safe to cache


def identify(path: Path, *, settle: bool) -> Identity:
    """The file's identity; with ``settle``, waits until its current mtime tick has passed."""
    try:
        stat = path.stat()
        if not path.is_file():
            raise DataError("dataset path is not a file", path=str(path))
    except FileNotFoundError:
        raise DataError("dataset file not found", path=str(path),
                        hint="check the dataset's path") from None
    except OSError as exc:
        raise DataError(f"cannot read dataset: {exc.strerror}", path=str(path)) from None
    tick = _COARSE_TICK_NS if stat.st_mtime_ns % 1_000_000_000 == 0 else _FINE_TICK_NS
    age = time.time_ns() - stat.st_mtime_ns
    if settle and 0 <= age < tick:
        time.sleep((tick - age) / 1e9)
        stat = path.stat()
        age = time.time_ns() - stat.st_mtime_ns
    return Identity(str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, age >= tick)


def unchanged(path: Path, identity: Identity) -> bool:
    """Whether ``path`` is still the file ``identity`` describes (it was not changed while read)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (
        identity.size, identity.mtime_ns, identity.inode
    )


def key(*parts: Any) -> str:
    """A file-name-safe digest of ``parts`` (JSON-serializable)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _file(cache_dir: Path, name: str) -> Path:
    return cache_dir / "datasets" / name


def _write(target: Path, body: bytes) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Not durable: an entry lost in a crash is only recomputed.
        write_atomic(target, body, durable=False)
    except OSError:
        return


def load(cache_dir: Path, entry: str, *identities: Identity) -> Any | None:
    """The result saved under ``entry`` for exactly these file identities, or None."""
    try:
        data = json.loads(_file(cache_dir, f"{entry}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("version") != VERSION or data.get("files") != [asdict(i) for i in identities]:
        return None
    return data.get("result")


def save(cache_dir: Path, entry: str, result: Any, *identities: Identity) -> None:
    """Saves ``result`` (JSON-serializable) unless a file's identity is not settled."""
    if not all(i.settled for i in identities):
        return
    files = [asdict(i) for i in identities]
    body = json.dumps({"version": VERSION, "files": files, "result": result})
    _write(_file(cache_dir, f"{entry}.json"), body.encode())


def load_digests(cache_dir: Path, identity: Identity) -> tuple[array[int], array[int]] | None:
    """Example digests and their lines, saved by ``save_digests`` for this very file."""
    try:
        with _file(cache_dir, f"digests-{key(identity.path)}.bin").open("rb") as stream:
            header = json.loads(stream.readline())
            if header.get("version") != VERSION or header.get("file") != asdict(identity):
                return None
            digests, lines = array("Q"), array("Q")
            digests.fromfile(stream, header["n"])
            lines.fromfile(stream, header["n"])
    except (OSError, ValueError, EOFError, KeyError):
        return None
    return digests, lines


def save_digests(cache_dir: Path, identity: Identity, digests: array[int],
                 lines: array[int]) -> None:
    """Binary, 16 bytes an example: one entry per file path, replaced when the file changes."""
    if not identity.settled:
        return
    header = json.dumps({"version": VERSION, "file": asdict(identity), "n": len(digests)})
    _write(_file(cache_dir, f"digests-{key(identity.path)}.bin"),
           header.encode() + b"\n" + digests.tobytes() + lines.tobytes())
