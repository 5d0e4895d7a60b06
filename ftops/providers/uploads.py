"""Large datasets through the Uploads API: parts sent in parallel within the run's request
budget, hashed in file order on a thread of their own, and the upload cancelled rather than left
half-way on any failure (or stop)."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from ftops.datasets import watch
from ftops.errors import RemoteError, StalePlanError
from ftops.identity import FINE_TUNE_PURPOSE
from ftops.stop import RequestBudget

if TYPE_CHECKING:  # only the openai-SDK types call these: Together's runs never load it
    from openai import OpenAI
    from openai.types import FileObject

# Files at least this large go through the Uploads API with parts sent in parallel.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
PART_SIZE = 64 * 1024 * 1024


class UploadSizes(TypedDict, total=False):
    """When a dataset goes up in parts and how large they are (tests and benchmarks lower
    them; the defaults are the API's limit)."""

    threshold: int  # files at least this large go up in parts (MULTIPART_THRESHOLD)
    part_size: int  # bytes per part (PART_SIZE)


def upload_parts(client: OpenAI, path: Path, name: str, size: int, sha256: str, *,
                 budget: RequestBudget, part_size: int) -> FileObject:
    """``path`` uploaded as ``name`` in parts of ``part_size`` bytes, each request in a slot of
    ``budget``; completed only once the bytes sent hash to ``sha256``."""
    with budget.slot():
        upload = client.uploads.create(bytes=size, filename=name,
                                       mime_type="application/jsonl", purpose=FINE_TUNE_PURPOSE)
    try:
        part_ids, digest = _send_parts(client, upload.id, path, size, budget=budget,
                                       part_size=part_size)
        check_sha256(path, digest, sha256)
        with budget.slot():
            done = client.uploads.complete(upload.id, part_ids=part_ids)
    except BaseException:
        import openai  # loaded: ``client`` is its

        # Leave nothing half-way: a pending upload would otherwise linger for an hour.
        with contextlib.suppress(openai.APIError), budget.slot(cleanup=True):
            client.uploads.cancel(upload.id)
        raise
    if done.file is None:
        raise RemoteError(f"upload of {path} completed without a file", path=str(path))
    return done.file


def _send_parts(client: OpenAI, upload_id: str, path: Path, size: int, *,
                budget: RequestBudget, part_size: int) -> tuple[list[str], str]:
    """The ids of the parts sent, in file order, and the SHA-256 of their bytes.

    Slots are taken here, in part order, before a part is read: a part is in memory only while
    it holds one (from its read until it is sent and hashed), and each part's predecessors hold
    one or are done, so the in-order hash never waits on a part that waits for a slot."""
    failed = threading.Event()
    done = [0]  # bytes sent, for a progress bar on a terminal (``ftops.datasets.watch``)
    counting = threading.Lock()
    with ThreadPoolExecutor(max_workers=1) as hasher, \
            ThreadPoolExecutor(max_workers=budget.size) as senders:
        digest = InOrderHash(hasher)

        def send(index: int) -> str:  # runs in the slot taken for it below
            try:
                with path.open("rb") as fh:
                    fh.seek(index * part_size)
                    chunk = fh.read(part_size)
                hashed = digest.feed(index, chunk)
                part_id = client.uploads.parts.create(upload_id, data=chunk).id
                hashed.wait()
                with counting:
                    done[0] += len(chunk)
                    watch.sent(path, done[0], size)
                return part_id
            except BaseException:
                failed.set()
                digest.abandon()  # no part waits for one that will never be hashed
                raise
            finally:
                budget.release()

        sent: list[Future[str]] = []
        for index in range(-(-size // part_size)):
            budget.acquire()
            if failed.is_set():
                budget.release()
                break
            sent.append(senders.submit(send, index))
        part_ids = [future.result() for future in sent]
    return part_ids, digest.hexdigest()


class InOrderHash:
    """SHA-256 of parts fed in any order: ``hasher``, a thread of its own, takes them in file
    order, so no part waits for hashing before it is sent."""

    def __init__(self, hasher: ThreadPoolExecutor) -> None:
        self._digest = hashlib.sha256()
        self._hasher = hasher
        self._next = 0
        self._waiting: dict[int, tuple[bytes, threading.Event]] = {}
        self._abandoned = False
        self._lock = threading.Lock()

    def feed(self, index: int, chunk: bytes) -> threading.Event:
        """Hands part ``index`` over; the event is set once it is hashed (or abandoned)."""
        hashed = threading.Event()
        with self._lock:
            if self._abandoned:
                hashed.set()
                return hashed
            self._waiting[index] = (chunk, hashed)
            while self._next in self._waiting:
                data, event = self._waiting.pop(self._next)
                self._hasher.submit(self._update, data, event)
                self._next += 1
        return hashed

    def _update(self, data: bytes, hashed: threading.Event) -> None:
        self._digest.update(data)
        hashed.set()

    def abandon(self) -> None:
        """The upload failed: wake every part waiting to be hashed (the digest is void)."""
        with self._lock:
            self._abandoned = True
            for _data, hashed in self._waiting.values():
                hashed.set()
            self._waiting.clear()

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
