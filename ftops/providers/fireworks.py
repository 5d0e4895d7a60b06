"""Type ``fireworks``: Fireworks AI through its official SDK (``fireworks-ai`` 1.x, the
Stainless-generated ``from fireworks import Fireworks`` client), converted to ftops's own types.

Identity without metadata. Fireworks keeps no job metadata, so jobs are recognised from what
they show (``ftops.recognise``: base or warm start, datasets, hyperparameters); ids are chosen by
the client, so a dataset is created as ``ftops-<repo tag>-<first 40 hex of its sha256>`` (55
characters, within Fireworks' id rules: a-z, 0-9, '-', a letter first, at most 63; the tag is
``ftops.identity.repo_tag``) with the display name ``ftops-<last 24 hex>-<bytes>``. A dataset is
taken for this repository's only when its id carries the repository's tag and id and display
name together spell a whole sha256 and a byte count: it is then shown as a file named
``ftops-<sha256>.jsonl`` of that size, so ``ftops.identity.is_dataset_file`` checks the full hash
and the size exactly as for OpenAI; the bytes sent are hashed before the dataset is created.

Jobs: supervised (``supervisedFineTuningJobs``) and DPO (``dpoJobs``, ``fireworks_dpo``: no
validation dataset; the preference layout is Fireworks' own, nothing converted). The output
model is named after the job (Fireworks' default), since an output model id can be used once and
a replaced job must not collide; a spec ``suffix`` is therefore not sent. Fireworks has no job
events API: ``events`` tells the job's creation and, once over, its end from the job itself; and
no results file (``result_files`` is empty). Dataset downloads go through signed URLs, which this
module does not fetch: ``file_text``/``file_bytes`` raise.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import fireworks
import httpx
from fireworks import Fireworks

from ftops.errors import RemoteError
from ftops.identity import FINE_TUNE_PURPOSE, dataset_filename, repo_tag, sha256_from_filename
from ftops.methods import RANGES
from ftops.providers import fireworks_dpo, loopback
from ftops.providers.base import Account, ChatReply, JobEvent, JobRequest, NoDeployments, file_gone
from ftops.providers.uploads import check_sha256
from ftops.recognise import Expected, label
from ftops.state import Actual, Job, JobError, RemoteFile, RemoteModel
from ftops.stop import RequestBudget

T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.fireworks.ai"
PAGE = 200  # the API's maximum page size
MAX_UPLOAD = 150 * 1024 * 1024  # datasets.upload takes files up to 150 MB (SDK docstring)
# method -> ftops hyperparameter -> (wire name, (minimum, maximum)), from ``ftops.methods.RANGES``
# (the one table the spec check reads too, with its sources). The common keys map where they mean
# the same thing (n_epochs, batch_size in examples); learning_rate_multiplier has no counterpart
# (Fireworks takes an absolute learning rate).
HYPERPARAMETERS: dict[str, dict[str, tuple[str, tuple[float, float]]]] = {
    method: {key: (allowed.wire, (allowed.low, allowed.high)) for key, allowed in keys.items()}
    for method, keys in RANGES["fireworks"].items()
}
_SNAKE = {"epochs": "epochs", "batchSizeSamples": "batch_size_samples",
          "learningRate": "learning_rate", "loraRank": "lora_rank",
          "maxContextLength": "max_context_length", "batchSize": "batch_size",
          "learningRateWarmupSteps": "learning_rate_warmup_steps",
          "gradientAccumulationSteps": "gradient_accumulation_steps",
          "optimizerWeightDecay": "optimizer_weight_decay"}
_STATUS = {"JOB_STATE_COMPLETED": "succeeded", "JOB_STATE_EARLY_STOPPED": "succeeded",
           "JOB_STATE_FAILED": "failed", "JOB_STATE_EXPIRED": "failed",
           "JOB_STATE_CANCELLED": "cancelled", "JOB_STATE_VALIDATING": "validating_files",
           "JOB_STATE_CREATING": "validating_files", "JOB_STATE_PENDING": "queued",
           "JOB_STATE_RUNNING": "running", "JOB_STATE_WRITING_RESULTS": "running",
           "JOB_STATE_PAUSED": "paused"}
_DATASET_ID = re.compile(r"ftops-([0-9a-f]{8})-([0-9a-f]{40})")  # repo tag, sha256[:40]
_DISPLAY = re.compile(r"ftops-([0-9a-f]{24})-(\d+)")


def make_client(base_url: str | None, key: str, max_retries: int, *,
                account: str) -> Fireworks:
    """The SDK client. Fireworks' own host is left to the SDK (given a base_url it sends chat
    to ``/v1/chat/completions`` rather than its inference host); loopback ignores proxies."""
    url = None if not base_url or base_url.rstrip("/") == DEFAULT_BASE_URL else base_url
    http = (httpx.Client(trust_env=False, verify=loopback.tls())
            if loopback.is_loopback(url) else None)
    return Fireworks(api_key=key, account_id=account, base_url=url, max_retries=max_retries,
                     http_client=http)


@contextlib.contextmanager
def _errors(*, gone_ok: bool = False) -> Iterator[None]:
    """SDK exceptions as one-line ``RemoteError``s (never the key); not-found swallowed where
    what was asked for is already done."""
    try:
        yield
    except fireworks.APIStatusError as exc:
        if gone_ok and isinstance(exc, fireworks.NotFoundError):
            return
        body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
        nested = body.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else body
        message = str(inner.get("message") or exc.message).splitlines()[0][:300]
        code = inner.get("code", "")
        raise RemoteError(f"fireworks: {exc.status_code} {code}: {message}") from None
    except fireworks.APIConnectionError as exc:
        raise RemoteError(f"fireworks: cannot connect: {exc.message}") from None


def _short(name: str | None) -> str | None:
    return name.rsplit("/", 1)[-1] if name else None


def _sha_of(dataset: Any, tag: str) -> tuple[str, int] | None:
    """(sha256, bytes) the id and display name of one of this repository's datasets (``tag``)
    spell; None for any other, another repository's included."""
    head = _DATASET_ID.fullmatch(_short(dataset.name) or "")
    tail = _DISPLAY.fullmatch(dataset.display_name or "")
    if head is None or tail is None or head.group(1) != tag:
        return None
    return head.group(2) + tail.group(1), int(tail.group(2))


def _to_file(dataset: Any, provider: str, tag: str) -> RemoteFile:
    found = _sha_of(dataset, tag) if dataset.state == "READY" else None
    created = int(dataset.create_time.timestamp()) if dataset.create_time else 0
    name = dataset_filename(found[0]) if found else (_short(dataset.name) or "")
    return RemoteFile(id=_short(dataset.name) or "", filename=name,
                      bytes=found[1] if found else 0, purpose=FINE_TUNE_PURPOSE,
                      created_at=created, provider=provider)


def to_job(obj: Any, provider: str) -> Job:
    status = _STATUS.get(obj.state or "", "queued")
    params: dict[str, Any] = {}
    for ours, (wire, _) in HYPERPARAMETERS["supervised"].items():
        value = getattr(obj, _SNAKE[wire], None)
        if value is not None:
            params[ours] = value
    error = None
    if status == "failed" and obj.status is not None:
        error = JobError(code=obj.status.code or "", message=obj.status.message or "")
    return Job(
        id=_short(obj.name) or "", status=status,
        model=obj.warm_start_from or obj.base_model or "",
        training_file=_short(obj.dataset) or "",
        created_at=int(obj.create_time.timestamp()) if obj.create_time else 0,
        validation_file=_short(obj.evaluation_dataset), method="supervised",
        hyperparameters=params,
        fine_tuned_model=obj.output_model if status == "succeeded" else None,
        error=error, provider=provider)


def to_dpo_job(obj: Any, provider: str) -> Job:
    """A DPO job (``dpoJobs``) as ftops's ``Job``: a supervised one's fields, method dpo."""
    job = to_job(fireworks_dpo.flat(obj), provider)
    return replace(job, method="dpo", hyperparameters={**job.hyperparameters,
                                                       **fireworks_dpo.beta(obj)})


class FireworksAccount(NoDeployments):
    """One Fireworks account (an ``Account``), read and changed through the official SDK."""

    def __init__(self, client: Fireworks, *, repo: str, provider: str, account: str,
                 expected: tuple[Expected, ...] = (),
                 adopted: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.client = client
        self.repo = repo
        self.provider = provider
        self.account = account
        self.expected = expected
        self.adopted = dict(adopted or {})
        self.tag = repo_tag(repo)  # in this repository's dataset ids
        self._names: dict[str, str] = {}  # dataset id -> the file name it stands for
        self._trained: dict[str, str] = {}
        self._dpo: set[str] = set()  # the ids of jobs seen to be DPO jobs (``dpoJobs``)

    # --- reads -------------------------------------------------------------------------------
    def files(self) -> tuple[RemoteFile, ...]:
        with _errors():
            found = tuple(_to_file(d, self.provider, self.tag)
                          for d in self.client.datasets.list(page_size=PAGE))
        self._names.update((f.id, f.filename) for f in found)
        return found

    def _file_sha(self, dataset_id: str) -> str | None:
        if dataset_id not in self._names:
            with _errors(gone_ok=True):
                self._names[dataset_id] = ""
                self._names[dataset_id] = _to_file(self.client.datasets.get(dataset_id),
                                                   self.provider, self.tag).filename
        return sha256_from_filename(self._names[dataset_id])

    def _ours(self, jobs: list[Job]) -> tuple[Job, ...]:
        """The jobs recognised as this repository's (labelled as ``ftops.recognise`` does)."""
        labelled = list(label(jobs, self.expected, self._file_sha, repo=self.repo,
                              trained=self._trained))
        labelled = [replace(j, metadata={**j.metadata, **self.adopted[j.id]})
                    if j.id in self.adopted else j for j in labelled]
        return tuple(j for j in labelled if j.metadata.get("ftops_repo") == self.repo)

    def _listed(self, since: int | None = None) -> list[Job]:
        """Both collections' jobs (supervised, DPO), newest first."""
        found = []
        with _errors():
            for pages in (self.client.supervised_fine_tuning_jobs.list,
                          self.client.dpo_jobs.list):
                for obj in pages(page_size=PAGE, order_by="createTime desc"):
                    job = self._seen(obj)
                    if since is not None and job.created_at < since:
                        break
                    found.append(job)
        return sorted(found, key=lambda j: j.created_at, reverse=True)

    def _seen(self, obj: Any) -> Job:
        """A job of either collection as ftops's ``Job`` (a DPO job's id remembered)."""
        if not fireworks_dpo.is_dpo(obj):
            return to_job(obj, self.provider)
        self._dpo.add(_short(obj.name) or "")
        return to_dpo_job(obj, self.provider)

    def jobs(self) -> tuple[Job, ...]:
        return self._ours(self._listed())

    def recent_jobs(self, since: int) -> tuple[Job, ...]:
        return self._ours(self._listed(since))

    def models(self) -> tuple[RemoteModel, ...]:
        with _errors():
            return tuple(RemoteModel(id=m.name or "", owned_by=self.account,
                                     created=int(m.create_time.timestamp()) if m.create_time
                                     else 0, provider=self.provider)
                         for m in self.client.models.list(page_size=PAGE))

    def read(self, budget: RequestBudget | None = None) -> Actual:
        def listing(read: Callable[[], T]) -> Callable[[], T]:
            return read if budget is None else partial(budget.call, read)

        with ThreadPoolExecutor(max_workers=3) as pool:
            files = pool.submit(listing(self.files))
            models = pool.submit(listing(self.models))
            files.result()  # the jobs are recognised by their datasets' names
            jobs = pool.submit(listing(self.jobs))
            return Actual(files=files.result(), jobs=jobs.result(), models=models.result())

    def job(self, job_id: str) -> Job:
        with _errors():
            found = self._seen(fireworks_dpo.get(self.client, job_id, dpo=job_id in self._dpo))
        ours = self._ours([found])
        return ours[0] if ours else found

    def events(self, job_id: str) -> list[JobEvent]:
        job = self.job(job_id)
        events = [JobEvent(f"{job_id}-created", job.created_at, "info",
                           f"Created fine-tuning job: {job_id}")]
        if not job.live:
            level = "error" if job.status == "failed" else "info"
            text = job.error.message if job.error else f"The job is {job.status}"
            events.append(JobEvent(f"{job_id}-{job.status}", job.created_at, level, text))
        return events

    def result_files(self, job_id: str) -> tuple[str, ...]:
        return ()

    def file_text(self, file_id: str) -> str:
        raise RemoteError(f"fireworks: reading dataset {file_id} back is not supported")

    def file_bytes(self, file_id: str) -> bytes:
        raise RemoteError(f"fireworks: reading dataset {file_id} back is not supported")

    def chat(self, model: str, messages: list[dict[str, Any]], *, seed: int) -> ChatReply:
        with _errors():
            obj = self.client.chat.completions.create(
                model=model, messages=messages, temperature=0, seed=seed)  # type: ignore[arg-type]
        usage = getattr(obj, "usage", None)
        choices = getattr(obj, "choices", None) or []
        return ChatReply(text=(choices[0].message.content or "") if choices else "",
                         prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                         completion_tokens=getattr(usage, "completion_tokens", 0) or 0)

    def calendar(self) -> str | None:
        return "fireworks"

    def with_retries(self, retries: int) -> Account:
        patient = copy.copy(self)
        patient.client = self.client.with_options(max_retries=retries)
        return patient

    # --- changes -----------------------------------------------------------------------------
    def upload(self, path: Path, sha256: str, *, parallel: int = 1, threshold: int = 0,
               part_size: int = 0, budget: RequestBudget | None = None) -> RemoteFile:
        """The dataset created as ``ftops-<repo tag>-<sha256[:40]>`` and its file uploaded;
        idempotent: a dataset already there is reused, one left ``UPLOADING`` by a run cut short
        is filled. The requests, one after another, hold one slot of ``budget``."""
        with budget.slot() if budget else contextlib.nullcontext():
            return self._upload(path, sha256)

    def _upload(self, path: Path, sha256: str) -> RemoteFile:
        data = path.read_bytes()
        check_sha256(path, hashlib.sha256(data).hexdigest(), sha256)
        if len(data) > MAX_UPLOAD:
            raise RemoteError(f"fireworks: {path} has {len(data)} bytes; ftops uploads datasets "
                              f"of at most {MAX_UPLOAD} bytes to Fireworks")
        dataset_id = f"ftops-{self.tag}-{sha256[:40]}"
        display = f"ftops-{sha256[40:]}-{len(data)}"
        with _errors():
            try:  # looked up first: the SDK retries a create's 409, with its back-off (~1.5 s)
                made = self.client.datasets.get(dataset_id)
            except fireworks.NotFoundError:
                try:
                    made = self.client.datasets.create(dataset={"display_name": display,
                                                                "format": "CHAT"},
                                                       dataset_id=dataset_id)
                except fireworks.ConflictError:  # made meanwhile, by another apply
                    made = self.client.datasets.get(dataset_id)
            if made.state != "READY":
                try:
                    self.client.datasets.upload(dataset_id,
                                                file=(dataset_filename(sha256), data))
                except fireworks.BadRequestError:
                    if self.client.datasets.get(dataset_id).state != "READY":  # not a race
                        raise
            made = self.client.datasets.get(dataset_id)
        found = _to_file(made, self.provider, self.tag)
        if found.filename != dataset_filename(sha256) or found.bytes != len(data):
            raise RemoteError(f"fireworks: dataset {dataset_id} exists but does not hold "
                              f"{dataset_filename(sha256)} ({len(data)} bytes)")
        return found

    def _wire(self, request: JobRequest) -> dict[str, Any]:
        table = HYPERPARAMETERS.get(request.method)
        if table is None:
            raise RemoteError(f"fireworks: method {request.method} is not supported (supervised "
                              "and dpo only)")
        args: dict[str, Any] = {}
        for name, value in request.hyperparameters.items():
            if value == "auto":
                continue
            if name not in table:
                raise RemoteError(f"fireworks: hyperparameter {name} is not taken by Fireworks "
                                  f"({', '.join(sorted(table))})")
            wire, (low, high) = table[name]
            if not isinstance(value, (int, float)) or not low <= value <= high:
                raise RemoteError(f"fireworks: {name} must be from {low:g} to {high:g}")
            args[_SNAKE.get(wire, wire)] = value  # dpo's beta keeps its name
        return args

    def create_job(self, request: JobRequest) -> Job:
        if request.seed is not None:
            raise RemoteError("fireworks: fine-tuning jobs take no seed")
        args = self._wire(request)
        account_models = f"accounts/{self.account}/models/"
        start = "warm_start_from" if request.model.startswith(account_models) else "base_model"
        args[start] = request.model
        args["dataset"] = f"accounts/{self.account}/datasets/{request.training_file}"
        if request.validation_file:
            args["evaluation_dataset"] = (f"accounts/{self.account}/datasets/"
                                          f"{request.validation_file}")
        if request.method == "dpo" and request.validation_file:
            raise RemoteError("fireworks: DPO jobs take no validation dataset")
        try:
            with _errors():
                job = self._seen(fireworks_dpo.create(self.client, request.method, args))
        except RemoteError as exc:
            # Fireworks answers a dataset it does not know with 404 NOT_FOUND naming it, and
            # no field: whether one named is gone is asked of it.
            named = any(f and f in exc.message
                        for f in (request.training_file, request.validation_file))
            gone = file_gone(request, exc.message, self._exists) if named else None
            if gone is None:
                raise
            raise gone from None
        # What ftops meant by it, though Fireworks keeps none of it: the job is known as ours.
        return replace(job, metadata={**request.metadata, **job.metadata})

    def _exists(self, dataset_id: str) -> bool:
        """False only when Fireworks answers that it has no such dataset."""
        try:
            self.client.datasets.get(dataset_id)
        except fireworks.NotFoundError:
            return False
        except fireworks.APIError:
            return True  # cannot tell: the create's own error is the one to show
        return True

    def cancel_job(self, job_id: str) -> None:
        with _errors(gone_ok=True):
            fireworks_dpo.cancel(self.client, job_id, dpo=job_id in self._dpo)

    def delete_file(self, file_id: str) -> None:
        with _errors(gone_ok=True):
            self.client.datasets.delete(file_id)

    def delete_model(self, model_id: str) -> None:
        with _errors(gone_ok=True):
            self.client.models.delete(_short(model_id) or model_id)
