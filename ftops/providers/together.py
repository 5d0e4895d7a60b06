"""Type ``together``: Together AI's fine-tuning API through its official SDK (``together`` 3.x).

``Account`` is the SDK boundary: every SDK object becomes one of ftops's own (``RemoteFile``,
``Job``, ``RemoteModel``, ``ChatReply``, ``JobEvent``) here, and every SDK error a
``TogetherError`` (a ``RemoteError``) of one line. Together keeps no job metadata, so jobs are
recognised from what they show (``ftops.recognise``): the sha256 in the names of their files,
base (or ``from_checkpoint``), method, hyperparameters, seed and suffix. Together keeps one file
per content, whoever uploads it, so files (uploaded as ``ftops-<repo tag>-<sha256>.jsonl``) are
shared between repositories, and a job is this repository's when its suffix ends with the
repository's tag (``ftops.identity.repo_tag``), sent after the spec's suffix.

Together has no paginated listings (SDK 3.1.1 sends no cursor): a read is one files listing and
one jobs listing, the account's models being the output models of its completed jobs. Jobs
have no results file (``result_files`` is empty).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import together

from ftops.errors import RemoteError
from ftops.identity import (
    FINE_TUNE_PURPOSE,
    dataset_filename,
    repo_tag,
    sha256_from_filename,
    tagged_filename,
    tagged_sha256,
)
from ftops.methods import RANGES
from ftops.providers import loopback
from ftops.providers.base import ChatReply, JobEvent, JobRequest, NoDeployments, file_gone
from ftops.providers.uploads import check_sha256
from ftops.recognise import Expected, label
from ftops.state import Actual, Job, JobError, RemoteFile, RemoteModel
from ftops.stop import RequestBudget

T = TypeVar("T")
PROVIDER_TYPE = "together"
# What Together takes, per method: ftops's key -> (the SDK's ``fine_tuning.create`` argument,
# what it takes), from ``ftops.methods.RANGES`` (the one table the spec check reads too). The
# spec's common keys n_epochs and batch_size mean the same thing there; learning_rate_multiplier
# has no equivalent (Together takes an absolute learning_rate).
HYPERPARAMETERS: dict[str, dict[str, tuple[str, str]]] = {
    method: {key: (allowed.wire, str(allowed)) for key, allowed in keys.items()}
    for method, keys in RANGES[PROVIDER_TYPE].items()
}
_METHODS = {"supervised": "sft", "dpo": "dpo"}
MAX_SUFFIX = 40  # "Up to 40 character suffix" (the SDK's fine_tuning.create docstring)
_STATUSES = {"pending": "validating_files", "queued": "queued", "running": "running",
             "compressing": "running", "uploading": "running", "completed": "succeeded",
             "cancelled": "cancelled", "error": "failed", "user_error": "failed"}


class TogetherError(RemoteError):
    """A request Together refused: ``status`` and ``param`` tell apply what it was about."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


def make_client(base_url: str | None, key: str, max_retries: int = 2) -> together.Together:
    """The SDK client; a loopback ``base_url`` (the emulator) ignores proxy settings."""
    http = (httpx.Client(trust_env=False, verify=loopback.tls())
            if loopback.is_loopback(base_url) else None)
    return together.Together(api_key=key, base_url=base_url, max_retries=max_retries,
                             http_client=http)


def _call(fn: Callable[[], T], *, gone_ok: bool = False) -> T | None:
    """``fn()``, its SDK errors as one-line ``TogetherError``s (never the key); a 404 is None
    when ``gone_ok``."""
    try:
        return fn()
    except together.APIStatusError as exc:
        if gone_ok and exc.status_code == 404:
            return None
        body = exc.body if isinstance(exc.body, dict) else {}
        inner = body.get("error", body)
        inner = inner if isinstance(inner, dict) else {}
        code, param = inner.get("code"), inner.get("param")
        message = str(inner.get("message") or exc.message).splitlines()[0]
        raise TogetherError(f"together answered {exc.status_code} ({code or 'no code'}): "
                            f"{message}", status=exc.status_code, code=code, param=param
                            ) from None
    except together.APIConnectionError as exc:
        raise TogetherError(f"together could not be reached: {exc.message}") from None


def _seconds(value: Any) -> int:
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, str) and value:
        return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    return int(value or 0)


# --- SDK objects to ftops's own -----------------------------------------------------------------
def _to_file(obj: Any) -> RemoteFile:
    return RemoteFile(id=obj.id, filename=obj.filename, bytes=obj.bytes, purpose=obj.purpose,
                      created_at=int(obj.created_at), provider=PROVIDER_TYPE)


def _hyperparameters(obj: Any) -> tuple[str, dict[str, Any]]:
    method = getattr(obj, "training_method", None)
    kind = "dpo" if getattr(method, "method", "sft") == "dpo" else "supervised"
    shown: dict[str, Any] = {key: getattr(obj, key, None) for key in
                             ("n_epochs", "batch_size", "learning_rate", "n_checkpoints",
                              "n_evals", "warmup_ratio", "max_grad_norm", "weight_decay")}
    training = getattr(obj, "training_type", None)
    shown["lora"] = getattr(training, "type", "Lora") == "Lora"
    for key in ("lora_r", "lora_alpha", "lora_dropout"):
        shown[key] = getattr(training, key, None)
    wire = {wire: key for key, (wire, _) in HYPERPARAMETERS[kind].items()}
    for name in ("train_on_inputs", "dpo_beta", "rpo_alpha", "simpo_gamma"):
        if name in wire:
            shown[wire[name]] = getattr(method, name, None)
    return kind, {k: v for k, v in shown.items() if v is not None}


def to_job(obj: Any) -> Job:
    status = _STATUSES.get(str(obj.status), str(obj.status))
    output = getattr(obj, "x_model_output_name", None) or getattr(obj, "output_name", None)
    start = getattr(obj, "from_checkpoint", None)
    kind, params = _hyperparameters(obj)
    error = None
    if status == "failed":
        error = JobError(code=str(obj.status), message=str(getattr(obj, "error", "") or ""))
    validation = getattr(obj, "validation_file", None) or None
    return Job(id=obj.id, status=status, model=start.split(":")[0] if start else obj.model,
               training_file=obj.training_file, created_at=_seconds(obj.created_at),
               validation_file=validation, method=kind, hyperparameters=params,
               seed=getattr(obj, "random_seed", None),
               fine_tuned_model=output if status == "succeeded" else None,
               trained_tokens=getattr(obj, "token_count", None), error=error,
               provider=PROVIDER_TYPE, suffix=getattr(obj, "suffix", None))


# --- the account --------------------------------------------------------------------------------
class TogetherAccount(NoDeployments):
    """One Together account, read and changed through the official SDK (an ``Account``)."""

    def __init__(self, client: together.Together, *, repo: str, provider: str = PROVIDER_TYPE,
                 expected: tuple[Expected, ...] = ()) -> None:
        self.client = client
        self.repo = repo
        self.provider = provider
        self.expected = expected
        self.tag = repo_tag(repo)  # on this repository's file names and job suffixes
        self._names: dict[str, str] = {}  # file id -> name, for recognising jobs
        self._trained: dict[str, str] = {}
        self._recognising = threading.Lock()

    def _own(self, job: Job) -> Job:
        return replace(job, provider=self.provider)

    # --- reads -------------------------------------------------------------------------------
    def _seen(self, obj: Any) -> RemoteFile:
        """A file as this repository sees it. Together keeps one file per content, whoever
        uploaded it (an upload of the same bytes answers the file there), so any ftops dataset
        is shown as ``ftops-<sha256>.jsonl``, to train on; one not named with this repository's
        tag is ``shared``: another's (or an untagged earlier one), never pruned or mended."""
        found = replace(_to_file(obj), provider=self.provider)
        tagged = tagged_sha256(found.filename)
        if tagged is not None:
            return replace(found, filename=dataset_filename(tagged[1]),
                           shared=tagged[0] != self.tag)
        return replace(found, shared=sha256_from_filename(found.filename) is not None)

    def files(self) -> tuple[RemoteFile, ...]:
        page = _call(self.client.files.list)
        found = tuple(self._seen(f) for f in (page.data if page else [])
                      if f.purpose == FINE_TUNE_PURPOSE)
        with self._recognising:
            self._names.update((f.id, f.filename) for f in found)
        return found

    def _file_sha(self, file_id: str) -> str | None:
        if file_id not in self._names:
            obj = _call(partial(self.client.files.retrieve, file_id), gone_ok=True)
            self._names[file_id] = self._seen(obj).filename if obj else ""
        return sha256_from_filename(self._names[file_id])

    def _tagged(self, job: Job) -> Job | None:
        """The job with its suffix as the spec wrote it, when its suffix carries this
        repository's tag (``_arguments``); None for another's job (the files being shared,
        the suffix is what tells them apart)."""
        suffix = job.suffix or ""
        if suffix != self.tag and not suffix.endswith(f"-{self.tag}"):
            return None
        return replace(job, suffix=suffix[:-len(self.tag)].removesuffix("-"))

    def _all_jobs(self) -> list[Job]:
        page = _call(self.client.fine_tuning.list)
        return [self._own(to_job(j)) for j in (page.data if page else [])]

    def _mine(self, jobs: list[Job]) -> tuple[Job, ...]:
        tagged = [j for j in map(self._tagged, jobs) if j is not None]
        with self._recognising:
            labelled = label(tagged, self.expected, self._file_sha, repo=self.repo,
                             trained=self._trained)
        return tuple(j for j in labelled if j.metadata.get("ftops_repo") == self.repo)

    def jobs(self) -> tuple[Job, ...]:
        return self._mine(self._all_jobs())

    def recent_jobs(self, since: int) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs() if j.created_at >= since)

    def _models(self, jobs: list[Job]) -> tuple[RemoteModel, ...]:
        return tuple(RemoteModel(id=j.fine_tuned_model, created=j.created_at,
                                 provider=self.provider) for j in jobs if j.fine_tuned_model)

    def models(self) -> tuple[RemoteModel, ...]:
        return self._models(self._all_jobs())

    def read(self, budget: RequestBudget | None = None) -> Actual:
        """Files and jobs listed at once (each in a slot of ``budget``); models are the
        output models of the jobs listed, so no third request is needed."""
        def listing(read: Callable[[], T]) -> Callable[[], T]:
            return read if budget is None else partial(budget.call, read)

        with ThreadPoolExecutor(max_workers=2) as pool:
            files = pool.submit(listing(self.files))
            listed = pool.submit(listing(self._all_jobs))
            found, every = files.result(), listed.result()
        return Actual(files=found, jobs=self._mine(every), models=self._models(every))

    def job(self, job_id: str) -> Job:
        found = self._own(to_job(_call(partial(self.client.fine_tuning.retrieve, job_id))))
        return self._tagged(found) or found

    def events(self, job_id: str) -> list[JobEvent]:
        page = _call(partial(self.client.fine_tuning.list_events, job_id))
        found = []
        for index, event in enumerate(page.data if page else []):
            key = getattr(event, "hash", None) or f"{job_id}-{index}"
            found.append(JobEvent(str(key), _seconds(event.created_at), event.level or "info",
                                  event.message))
        return sorted(found, key=lambda e: e.created_at)

    def result_files(self, job_id: str) -> tuple[str, ...]:
        return ()

    def file_bytes(self, file_id: str) -> bytes:
        response = _call(partial(self.client.files.content, file_id))
        return response.read() if response else b""

    def file_text(self, file_id: str) -> str:
        return self.file_bytes(file_id).decode("utf-8")

    def chat(self, model: str, messages: list[dict[str, Any]], *, seed: int) -> ChatReply:
        obj = _call(partial(self.client.chat.completions.create, model=model,
                            messages=messages, temperature=0, seed=seed))
        usage = getattr(obj, "usage", None)
        choices = getattr(obj, "choices", None) or []
        return ChatReply(text=(choices[0].message.content or "") if choices else "",
                         prompt_tokens=usage.prompt_tokens if usage else 0,
                         completion_tokens=usage.completion_tokens if usage else 0)

    def calendar(self) -> str | None:
        return PROVIDER_TYPE

    def with_retries(self, retries: int) -> TogetherAccount:
        patient = copy.copy(self)
        patient.client = self.client.with_options(max_retries=retries)
        return patient

    # --- changes -----------------------------------------------------------------------------
    def upload(self, path: Path, sha256: str, *, parallel: int = 4, threshold: int = 0,
               part_size: int = 0, budget: RequestBudget | None = None) -> RemoteFile:
        """Uploads ``path`` under ``ftops-<repo tag>-<sha256>.jsonl``. The SDK names a file by its
        path, so a copy of that name is uploaded; Together answers a file it already holds (same
        checksum) with that file, so a repeated upload adds nothing (``_seen``)."""
        data = path.read_bytes()
        check_sha256(path, hashlib.sha256(data).hexdigest(), sha256)
        with tempfile.TemporaryDirectory(prefix="ftops-together-") as folder:
            named = Path(folder) / tagged_filename(sha256, self.tag)
            named.write_bytes(data)
            send = partial(self.client.files.upload, named, purpose=FINE_TUNE_PURPOSE,
                           check=False)
            obj = self._patiently(send if budget is None else partial(budget.call, send))
        found = self._seen(obj)
        self._names[found.id] = found.filename
        return found

    def _patiently(self, send: Callable[[], T]) -> T | None:
        """``send()`` again after a retryable failure, up to the client's ``max_retries``: the
        SDK does not retry the PUT to the signed URL, and a retried upload is safe (Together
        answers a checksum it holds with the file it holds)."""
        for attempt in range(self.client.max_retries + 1):
            try:
                return _call(send)
            except TogetherError as exc:
                retryable = exc.status is None or exc.status in (408, 409, 429) or exc.status >= 500
                if not retryable or attempt == self.client.max_retries:
                    raise
        return None  # pragma: no cover (the loop returns or raises)

    def _arguments(self, request: JobRequest) -> dict[str, Any]:
        table = HYPERPARAMETERS.get(request.method)
        if table is None:
            raise TogetherError(f"together has no {request.method} fine-tuning (sft, dpo only)")
        args: dict[str, Any] = {"training_file": request.training_file,
                                "training_method": _METHODS[request.method]}
        for key, value in request.hyperparameters.items():
            if key not in table:
                raise TogetherError(f"together does not take hyperparameter {key} for "
                                    f"{request.method}")
            if value != "auto":
                args[table[key][0]] = value
        # A model this account trained (a chained model's parent) is continued from its
        # checkpoint; Together's ``model`` takes only base models.
        if request.model in self._trained:
            args["from_checkpoint"] = request.model
        else:
            args["model"] = request.model
        if request.validation_file:
            args["validation_file"] = request.validation_file
        # The repository's tag ends the suffix: the job is told from another repository's
        # trained on the same (shared) file with the same settings (``_tagged``).
        args["suffix"] = f"{request.suffix}-{self.tag}" if request.suffix else self.tag
        if len(args["suffix"]) > MAX_SUFFIX:
            raise TogetherError(f"together: suffix {request.suffix!r} is too long: Together takes "
                                f"{MAX_SUFFIX} characters, ftops ends it with the repository's "
                                f"tag (-{self.tag}), so at most {MAX_SUFFIX - len(self.tag) - 1}")
        if request.seed is not None:
            args["random_seed"] = request.seed
        if request.method == "supervised" and "train_on_inputs" not in args:
            args["train_on_inputs"] = "auto"
        return args

    def create_job(self, request: JobRequest) -> Job:
        args = self._arguments(request)
        try:
            made = _call(partial(self.client.fine_tuning.create, **args))
        except TogetherError as exc:
            # Together refuses a file it does not know with a 400 naming it as ``param``.
            gone = (file_gone(request, exc.message, self._exists)
                    if exc.status in (400, 404) else None)
            if gone is None:
                raise
            raise gone from None
        job = self._own(to_job(made))
        job = self._tagged(job) or job
        # What ftops sent, which Together does not keep: the job is known as ours.
        return replace(job, metadata={**request.metadata, **job.metadata})

    def _exists(self, file_id: str) -> bool:
        """False only when Together answers that it has no such file."""
        try:
            return _call(partial(self.client.files.retrieve, file_id), gone_ok=True) is not None
        except TogetherError:
            return True  # cannot tell: the create's own error is the one to show

    def cancel_job(self, job_id: str) -> None:
        _call(partial(self.client.fine_tuning.cancel, job_id), gone_ok=True)

    def delete_file(self, file_id: str) -> None:
        _call(partial(self.client.files.delete, file_id), gone_ok=True)

    def delete_model(self, model_id: str) -> None:
        """Together deletes a model with the job that made it; a model gone is success."""
        for job in self._all_jobs():
            if job.fine_tuned_model == model_id:
                _call(partial(self.client.fine_tuning.delete, job.id), gone_ok=True)
