"""Large datasets through the Uploads API: parts sent in parallel, hashed in file order on a
thread of their own, and the upload cancelled rather than left half-way on any failure."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
from openai import OpenAI
from openai.types import FileObject

from ftops.errors import RemoteError, StalePlanError
from ftops.identity import FINE_TUNE_PURPOSE

# Files at least this large go through the Uploads API with parts sent in parallel.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_SIZE = 64 * 1024 * 1024


def upload_parts(client: OpenAI, path: Path, name: str, size: int, sha256: str, *,
                 parallel: int, part_size: int) -> FileObject:
    """``path`` uploaded as ``name`` in parts of ``part_size`` bytes, ``parallel`` at a time;
    completed only once the bytes sent hash to ``sha256``."""
    upload = client.uploads.create(bytes=size, filename=name, mime_type="application/jsonl",
                                   purpose=FINE_TUNE_PURPOSE)

    def send(index: int) -> str:  # ``digest`` is set below, before the first call
        with path.open("rb") as fh:
            fh.seek(index * part_size)
            chunk = fh.read(part_size)
        digest.feed(index, chunk)
        return client.uploads.parts.create(upload.id, data=chunk).id

    try:
        with ThreadPoolExecutor(max_workers=1) as hasher, \
                ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            digest = InOrderHash(hasher)
            part_ids = list(pool.map(send, range(-(-size // part_size))))
        check_sha256(path, digest.hexdigest(), sha256)
        done = client.uploads.complete(upload.id, part_ids=part_ids)
    except BaseException:
        # Leave nothing half-way: a pending upload would otherwise linger for an hour.
        with contextlib.suppress(openai.APIError):
            client.uploads.cancel(upload.id)
        raise
    if done.file is None:
        raise RemoteError(f"upload of {path} completed without a file", path=str(path))
    return done.file


class InOrderHash:
    """SHA-256 of parts fed in any order: ``hasher``, a thread of its own, takes them in file
    order, so no part waits for hashing before it is sent."""

    def __init__(self, hasher: ThreadPoolExecutor) -> None:
        self._digest = hashlib.sha256()
        self._hasher = hasher
        self._next = 0
        self._waiting: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def feed(self, index: int, chunk: bytes) -> None:
        with self._lock:
            self._waiting[index] = chunk
            while self._next in self._waiting:
                self._hasher.submit(self._digest.update, self._waiting.pop(self._next))
                self._next += 1

    def hexdigest(self) -> str:
        """Call once ``hasher`` has shut down."""
        return self._digest.hexdigest()


def check_sha256(path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        # The file the plan was made from is gone: uploading this one would train on data
        # nobody reviewed.
        raise StalePlanError(
            f"changed since it was planned (sha256 {actual[:12]}, planned {expected[:12]}); "
            "nothing was uploaded", path=str(path), hint="run `ftops plan` again")
