"""The emulator's account state: records, id generation, blobs on disk, atomic persistence."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import string
import tempfile
import typing
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar

from ftops.atomic import write_atomic
from ftops.emulator.blobs import md5_of
from ftops.emulator.blobs import open_blob as open_blob  # re-exported: readers import it here
from ftops.errors import FtopsError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Rec = TypeVar("_Rec", bound="DataclassInstance")

STATE_VERSION = 1
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class FileRec:
    id: str
    seq: int  # creation order; cursors of deleted files still resolve through it
    bytes: int
    created_at: int
    filename: str
    purpose: str
    expires_at: int | None = None


@dataclass(frozen=True)
class PartRec:
    id: str
    upload_id: str
    created_at: int
    bytes: int


@dataclass(frozen=True)
class UploadRec:
    id: str
    created_at: int
    expires_at: int
    filename: str
    bytes: int
    mime_type: str
    purpose: str
    status: str  # pending | completed | cancelled (expiry is derived from the clock)
    file_expires_after: int | None = None
    file_id: str | None = None
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobRec:
    """A fine-tuning job as created; progress is derived from the clock (see timeline.py)."""

    id: str
    created_at: float
    duration: float  # seconds from creation to the terminal state, paused time excluded
    model: str
    root_model: str
    model_key: str  # the last segment of the fine-tuned model id, fixed at creation
    organization_id: str
    org_slug: str
    training_file: str
    validation_file: str | None
    method_type: str
    hyperparameters: dict[str, Any]  # as requested, "auto" where not given
    resolved: dict[str, Any]  # what training uses once files are validated
    grader: dict[str, Any] | None
    suffix: str | None
    seed: int
    metadata: dict[str, str] | None
    integrations: list[dict[str, Any]] | None
    examples: int
    tokens_per_epoch: int
    failure: dict[str, Any] | None  # the error the job ends with after validating_files
    # (effective seconds at pause, wall start, wall end or None while paused)
    pauses: tuple[tuple[float, float, float | None], ...] = ()
    cancelled_at: float | None = None
    final_status: str | None = None
    finished_at: int | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    result_files: tuple[str, ...] = ()
    training_type: str | None = None  # Azure's trainingType; set: the job follows Azure's rules
    model_name: str | None = None  # the fine-tuned model id, where a dialect names it itself


@dataclass(frozen=True)
class DeploymentRec:
    """An Azure deployment (management plane); provisioned ``duration`` seconds after
    ``changed_at`` (see ``deployments``)."""

    key: str  # the ARM resource id, lower-cased: ARM names are case-insensitive
    id: str  # the ARM resource id as first written
    name: str
    model_format: str
    model_name: str
    model_version: str
    sku_name: str
    sku_capacity: int
    created_at: float
    changed_at: float
    duration: float
    operation: str  # the id of the latest create/update operation (Azure-AsyncOperation)
    updating: bool = False  # the latest change was an update ("Updating", not "Creating")


@dataclass(frozen=True)
class ModelRec:
    id: str
    created: int
    owned_by: str


@cache
def _tuple_fields(cls: type[DataclassInstance]) -> frozenset[str]:
    hints = typing.get_type_hints(cls)
    return frozenset(
        f.name for f in dataclasses.fields(cls) if typing.get_origin(hints[f.name]) is tuple
    )


def _from_json(cls: type[_Rec], raw: dict[str, Any]) -> _Rec:
    values = dict(raw)
    for name in _tuple_fields(cls) & values.keys():
        values[name] = tuple(tuple(v) if isinstance(v, list) else v for v in values[name])
    return cls(**values)


class Store:
    """All records plus the blobs of file contents.

    Without a state path everything lives in memory and a temporary blob directory; with one,
    ``commit()`` rewrites the state file atomically and blobs live in ``<state>.blobs/``.
    Not thread-safe (except ``spool``): the server serialises access.
    """

    def __init__(self, state_path: Path | None, *, seed: int) -> None:
        self.state_path = state_path
        self.files: dict[str, FileRec] = {}
        self.file_seq: dict[str, int] = {}
        self.uploads: dict[str, UploadRec] = {}
        self.parts: dict[str, PartRec] = {}
        self.jobs: dict[str, JobRec] = {}
        self.job_order: list[str] = []  # creation order; jobs are never deleted
        self.job_index: dict[str, int] = {}
        self.models: dict[str, ModelRec] = {}
        self.deployments: dict[str, DeploymentRec] = {}  # by DeploymentRec.key, in creation order
        self.due: list[tuple[float, str]] = []  # heap of (terminal time, job id), not persisted
        self.next_seq = 0
        self._dirty = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ftops-emulator-")
            self.blob_dir = Path(self._tmp.name)
        else:
            self.blob_dir = state_path.parent / f"{state_path.name}.blobs"
            if state_path.exists():
                self._load(state_path)
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        generation = len(self.file_seq) + len(self.uploads) + len(self.parts) + len(self.jobs)
        self._random = random.Random(f"{seed}:{generation}")

    # ids -------------------------------------------------------------------------------------
    def new_id(self, prefix: str, length: int = 24) -> str:
        taken = (self.file_seq, self.uploads, self.parts, self.jobs)
        while True:
            candidate = prefix + "".join(self._random.choices(_ALPHABET, k=length))
            if not any(candidate in table for table in taken):
                return candidate

    def random_int(self, upper: int) -> int:
        return self._random.randrange(upper)

    # records ---------------------------------------------------------------------------------
    def put_file(self, rec: FileRec) -> None:
        self.files[rec.id] = rec
        self.file_seq[rec.id] = rec.seq
        self._dirty = True

    def drop_file(self, file_id: str) -> None:
        del self.files[file_id]
        self.drop_blob(file_id)
        self._dirty = True

    def put_upload(self, rec: UploadRec) -> None:
        self.uploads[rec.id] = rec
        self._dirty = True

    def put_part(self, rec: PartRec) -> None:
        self.parts[rec.id] = rec
        self._dirty = True

    def put_job(self, rec: JobRec) -> None:
        if rec.id not in self.job_index:
            self.job_index[rec.id] = len(self.job_order)
            self.job_order.append(rec.id)
        self.jobs[rec.id] = rec
        self._dirty = True

    def put_model(self, rec: ModelRec) -> None:
        self.models[rec.id] = rec
        self._dirty = True

    def drop_model(self, model_id: str) -> None:
        del self.models[model_id]
        self._dirty = True

    def put_deployment(self, rec: DeploymentRec) -> None:
        self.deployments[rec.key] = rec
        self._dirty = True

    def drop_deployment(self, key: str) -> None:
        del self.deployments[key]
        self._dirty = True

    def new_hex(self) -> str:
        """32 hex digits from the seeded stream: Azure's job ids and fine-tuned model keys."""
        while True:
            candidate = f"{self._random.getrandbits(128):032x}"
            if f"ftjob-{candidate}" not in self.jobs:
                return candidate

    def take_seq(self) -> int:
        self.next_seq += 1
        return self.next_seq

    # blobs -----------------------------------------------------------------------------------
    def blob_path(self, object_id: str) -> Path:
        return self.blob_dir / object_id

    def write_blob(self, object_id: str, chunks: Iterable[bytes]) -> int:
        """Writes ``chunks`` as the blob of ``object_id``; returns its size."""
        size = 0

        def copy(out: BinaryIO) -> None:
            nonlocal size
            for chunk in chunks:
                size += len(chunk)
                out.write(chunk)

        write_atomic(self.blob_path(object_id), copy, durable=False)
        return size

    def spool(self, *_: Any, **__: Any) -> IO[bytes]:
        """A named temporary file in the blob directory for werkzeug to parse an uploaded file
        into (its stream factory, called outside the server lock), so ``adopt_blob`` stores it
        with a rename instead of a copy."""
        spooled = tempfile.NamedTemporaryFile(  # noqa: SIM115 (the request owns it)
            dir=self.blob_dir, prefix=".spool-", suffix=".tmp", delete=False
        )
        # Gone with the request whichever way it ends; missing_ok: adopted, or the dir removed.
        weakref.finalize(spooled, Path(spooled.name).unlink, missing_ok=True)
        return spooled

    def adopt_blob(self, object_id: str, spooled: IO[bytes]) -> None:
        """Makes a file from ``spool`` the blob of ``object_id``."""
        spooled.flush()
        os.replace(spooled.name, self.blob_path(object_id))

    def drop_blob(self, object_id: str) -> None:
        path = self.blob_path(object_id)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def keep_blob(self, source_id: str, keeper_id: str) -> None:
        """Gives the blob of ``source_id`` a second name, ``keeper_id``, that outlives it."""
        source, target = self.blob_path(source_id), self.blob_path(keeper_id)
        self.drop_blob(keeper_id)
        if source.is_dir():
            shutil.copytree(source, target, copy_function=_link)
        else:
            _link(source, target)

    def parts_md5(self, part_ids: list[str]) -> str:
        """The md5 of the blobs of ``part_ids`` one after another (mapped, not read into Python)."""
        return md5_of([self.blob_path(p) for p in part_ids])

    def join_parts(self, object_id: str, part_ids: list[str]) -> None:
        """Makes the blobs of ``part_ids`` (moved, in this order) the blob of ``object_id``, a
        directory of segments: completing an upload copies no bytes."""
        staging = Path(tempfile.mkdtemp(dir=self.blob_dir, prefix=f".{object_id}.", suffix=".tmp"))
        for index, part_id in enumerate(part_ids):
            os.replace(self.blob_path(part_id), staging / f"{index:06d}")
        os.replace(staging, self.blob_path(object_id))

    # persistence -----------------------------------------------------------------------------
    def commit(self) -> None:
        """Writes the state file if anything changed since the last commit."""
        if not self._dirty or self.state_path is None:
            return
        state = {
            "version": STATE_VERSION,
            "next_seq": self.next_seq,
            # Records hold only JSON values, so their shallow __dict__ serialises as is.
            "files": [vars(r) for r in self.files.values()],
            "deleted_file_seq": {k: v for k, v in self.file_seq.items() if k not in self.files},
            "uploads": [vars(r) for r in self.uploads.values()],
            "parts": [vars(r) for r in self.parts.values()],
            "jobs": [vars(r) for r in self.jobs.values()],
            "models": [vars(r) for r in self.models.values()],
            "deployments": [vars(r) for r in self.deployments.values()],
        }
        data = json.dumps(state, separators=(",", ":"), allow_nan=False).encode()
        write_atomic(self.state_path, data, durable=False)
        self._dirty = False

    def _load(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"state version {state.get('version')!r} is not supported")
            self.next_seq = int(state["next_seq"])
            self.file_seq.update(state["deleted_file_seq"])
            for raw in state["files"]:
                self.put_file(_from_json(FileRec, raw))
            for raw in state["uploads"]:
                self.put_upload(_from_json(UploadRec, raw))
            for raw in state["parts"]:
                self.put_part(_from_json(PartRec, raw))
            for raw in state["jobs"]:
                self.put_job(_from_json(JobRec, raw))
            for raw in state["models"]:
                self.put_model(_from_json(ModelRec, raw))
            for raw in state.get("deployments", []):  # absent in state files written before
                self.put_deployment(_from_json(DeploymentRec, raw))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FtopsError(
                f"cannot read emulator state: {exc}",
                path=str(path),
                hint="fix or delete the file, or pass another --state",
            ) from exc
        self._dirty = False

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _link(source: Path | str, target: Path | str) -> None:
    try:
        os.link(source, target)
    except OSError:  # file systems without hard links
        shutil.copyfile(source, target)
