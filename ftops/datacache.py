"""The analysis cache: results about a data file, reused while the file is unchanged.

An entry is keyed by a name the caller derives from everything that changes the result, and is
valid only for the file identity (path, size, mtime, inode) recorded with it. A file modified
less than one timestamp tick ago cannot be told apart from a later same-size change, so
``identify(settle=True)`` first waits out that tick (at most 20 ms on file systems that keep
sub-second times); a file whose mtime is still not settled (clock skew) is never cached.
Entries are written atomically; a cache directory that cannot be written is silently skipped.

Besides these per-file entries, ``blocks/`` holds results about content (blocks of lines, named
by a hash of their bytes and settings) for any number of files and versions: so it is bounded,
least recently used first (``bound_blocks``), and an entry carries a checksum of itself, since
it is trusted without a file identity to check (``load_block`` returns None for any damage).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from array import array
from contextlib import suppress
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
# Block entries kept at most (bytes on disk); an eviction goes down to _EVICT_TO of it, so the
# directory is listed once per fifth of the bound written, not on every run.
BLOCK_CACHE_BYTES = 256 * 1024**2
_EVICT_TO = 0.8
# A temporary file this old is left by a writer that died (a live one renames within seconds).
_STALE_TMP_NS = 600 * 1_000_000_000


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


def _write(target: Path, body: bytes) -> bool:
    """Whether ``body`` was written (a directory that cannot be written is skipped)."""
    try:
        try:
            # Not durable: an entry lost in a crash is only recomputed.
            write_atomic(target, body, durable=False)
        except FileNotFoundError:  # the first entry of its directory
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, body, durable=False)
    except OSError:
        return False
    return True


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


# --- content entries: blocks and notes ----------------------------------------------------------


def _framed(body: bytes) -> bytes:
    """``body`` behind a checksum line: a truncated, torn or edited entry fails ``_unframed``."""
    return hashlib.sha256(body).hexdigest()[:32].encode() + b"\n" + body


def _unframed(raw: bytes) -> bytes | None:
    check, newline, body = raw.partition(b"\n")
    if not newline or check != hashlib.sha256(body).hexdigest()[:32].encode():
        return None
    return body


def _block_file(cache_dir: Path, name: str) -> Path:
    # 256 subdirectories: listing and lookups stay fast with hundreds of thousands of entries.
    return Path(os.path.join(cache_dir, "blocks", name[:2], f"{name}.bin"))


def touch_blocks(cache_dir: Path, names: list[str]) -> None:
    """Marks entries as just used without reading them (their file's unchanged part)."""
    for name in names:
        with suppress(OSError):
            os.utime(_block_file(cache_dir, name))


def load_block(cache_dir: Path, name: str) -> bytes | None:
    """The intact body saved under ``name``, marked as just used; None if missing or damaged.
    Another process may evict it at any moment: then this is a miss, never an error."""
    target = _block_file(cache_dir, name)
    try:
        body = _unframed(target.read_bytes())
    except OSError:
        return None
    if body is not None:
        with suppress(OSError):  # recency for the LRU order; an evicted entry has none
            os.utime(target)
    return body


def save_block(cache_dir: Path, name: str, body: bytes) -> int:
    """Saves ``body`` under ``name`` and returns the bytes it takes (0 if it could not)."""
    data = _framed(body)
    return len(data) if _write(_block_file(cache_dir, name), data) else 0


def load_note(cache_dir: Path, name: str) -> bytes | None:
    """A per-path hint saved by ``save_note``, if intact. Its user must check it against the
    data (it says what a file held when last read, not what it holds)."""
    try:
        return _unframed(_file(cache_dir, name).read_bytes())
    except OSError:
        return None


def save_note(cache_dir: Path, name: str, body: bytes) -> None:
    _write(_file(cache_dir, name), _framed(body))


def bound_blocks(cache_dir: Path, written: int, limit: int = BLOCK_CACHE_BYTES) -> None:
    """Keeps block entries within ``limit`` bytes after ``written`` more were saved, evicting the
    least recently used. The running total in ``blocks/usage`` saves listing the directory on
    every run; two processes updating it at once may lose one's bytes, which only delays the
    next listing, which then counts exactly."""
    usage = cache_dir / "blocks" / "usage"
    try:
        used: int | None = int(usage.read_bytes())
    except (OSError, ValueError):
        used = None  # first use, or damaged: count
    if used is not None and used + written <= limit:
        if written:
            _write(usage, str(used + written).encode())
        return
    _write(usage, str(_evict(cache_dir / "blocks", limit)).encode())


def _entries(root: Path) -> list[tuple[int, int, str]]:
    """(mtime, size, path) of every block entry; removes temporary files of dead writers."""
    found = []
    now = time.time_ns()
    with suppress(OSError), os.scandir(root) as shards:
        for shard in shards:
            if not shard.is_dir():
                continue
            with suppress(OSError), os.scandir(shard.path) as files:
                for entry in files:
                    try:
                        stat = entry.stat()
                    except OSError:  # evicted by another process meanwhile
                        continue
                    if not entry.name.startswith("."):
                        found.append((stat.st_mtime_ns, stat.st_size, entry.path))
                    elif now - stat.st_mtime_ns > _STALE_TMP_NS:
                        with suppress(OSError):
                            os.unlink(entry.path)
    return found


def _evict(root: Path, limit: int) -> int:
    """Deletes the least recently used entries down to ``_EVICT_TO`` of ``limit`` if over it;
    returns the bytes left."""
    entries = _entries(root)
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return total
    keep = int(limit * _EVICT_TO)
    for _, size, name in sorted(entries):
        if total <= keep:
            break
        with suppress(OSError):  # another process may have evicted it first
            os.unlink(name)
        total -= size
    return total
