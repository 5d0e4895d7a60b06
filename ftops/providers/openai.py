"""Type ``openai``: OpenAI's API and any OpenAI-compatible endpoint, through the official SDK.

``Remote`` is the SDK boundary for every provider type (an ``AzureOpenAI`` client speaks the
same API): it reads an account in pages, creates, cancels and deletes, and converts every SDK
object into ftops's own frozen dataclasses, so nothing outside ``ftops.providers`` sees one.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import openai
from openai import DefaultHttpxClient, OpenAI

from ftops.errors import RemoteError
from ftops.identity import (
    FINE_TUNE_PURPOSE,
    dataset_filename,
    repo_tag,
    scoped_filename,
    sha256_from_filename,
    tagged_filename,
)
from ftops.providers.base import ChatReply, FileGone, JobEvent, JobRequest, file_gone
from ftops.providers.deployments import Deployments
from ftops.providers.features import Features
from ftops.providers.messages import api_error_message
from ftops.providers.uploads import MULTIPART_THRESHOLD, PART_SIZE, check_sha256, upload_parts
from ftops.recognise import Expected, label
from ftops.spec import Provider
from ftops.state import (
    DEFAULT_PROVIDER,
    Actual,
    Deployment,
    Job,
    JobError,
    RemoteFile,
    RemoteModel,
)
from ftops.stop import RequestBudget

JOBS_PAGE = 100
FILES_PAGE = 10_000  # the API's maximum: one request for almost every account
# Every emulator response names the provider whose behaviour (and calendar) it emulates.
EMULATOR_HEADER = "x-ftops-emulator"
T = TypeVar("T")
# Azure's spelling of each training type (the spec writes them in lower case).
TRAINING_TYPES = {"standard": "Standard", "globalstandard": "GlobalStandard",
                  "developer": "Developer"}
# Where jobs may come back without metadata, dataset names carry the repository's tag
# (``ftops.identity.repo_tag``); Azure also takes the untagged names of earlier versions as its
# own, which its jobs, metadata kept, were created with.
TAGGED_TYPES = frozenset({"azure", "nebius"})


def make_client(provider: Provider, key: str, *, max_retries: int,
                http_client: DefaultHttpxClient | None) -> OpenAI:
    """The SDK client for an ``openai`` entry (unset settings leave the SDK's own variables,
    OPENAI_BASE_URL, OPENAI_ORG_ID and OPENAI_PROJECT_ID, in force)."""
    return OpenAI(api_key=key, base_url=provider.base_url, organization=provider.organization,
                  project=provider.project, max_retries=max_retries, http_client=http_client)


# --- SDK objects to ftops's own -----------------------------------------------------------------


def _to_file(obj: Any, provider: str) -> RemoteFile:
    return RemoteFile(
        id=obj.id,
        filename=obj.filename,
        bytes=obj.bytes,
        purpose=obj.purpose,
        created_at=obj.created_at,
        provider=provider,
    )


def _hyperparameters(obj: Any) -> tuple[str, dict[str, Any]]:
    """Method type and its hyperparameters, from ``method`` or the legacy top-level field."""
    method = getattr(obj, "method", None)
    kind = getattr(method, "type", None) or "supervised"
    section = getattr(method, kind, None) if method is not None else None
    params = getattr(section, "hyperparameters", None) or getattr(obj, "hyperparameters", None)
    values = params.model_dump(exclude_none=True) if params is not None else {}
    return kind, values


def to_job(obj: Any, provider: str = DEFAULT_PROVIDER) -> Job:
    kind, params = _hyperparameters(obj)
    error = None
    if obj.error is not None and (obj.error.code or obj.error.message):
        error = JobError(code=obj.error.code or "", message=obj.error.message or "",
                         param=obj.error.param)
    return Job(
        id=obj.id,
        status=obj.status,
        model=obj.model,
        training_file=obj.training_file,
        created_at=obj.created_at,
        validation_file=obj.validation_file,
        method=kind,
        hyperparameters=params,
        seed=obj.seed,
        fine_tuned_model=obj.fine_tuned_model,
        trained_tokens=obj.trained_tokens,
        error=error,
        metadata=dict(obj.metadata or {}),
        provider=provider,
        # Not in OpenAI's job object; Azure shows the suffix the job was created with.
        suffix=getattr(obj, "suffix", None) or getattr(obj, "user_provided_suffix", None),
    )


def _to_model(obj: Any, provider: str) -> RemoteModel:
    shutdown = getattr(obj, "shutdown_date", None)
    if isinstance(shutdown, str):
        shutdown = dt.date.fromisoformat(shutdown)
    return RemoteModel(id=obj.id, owned_by=obj.owned_by, created=obj.created,
                       shutdown_date=shutdown, provider=provider)


# --- the account --------------------------------------------------------------------------------


class Remote:
    """One provider's account, read and changed through the official SDK (an ``Account``)."""

    def __init__(self, client: OpenAI, *, repo: str, provider: str = DEFAULT_PROVIDER,
                 features: Features | None = None,
                 adopted: Mapping[str, Mapping[str, str]] | None = None,
                 provider_type: str = "openai", expected: tuple[Expected, ...] = (),
                 deployments: Deployments | None = None) -> None:
        self.client = client
        self.repo = repo
        self.provider = provider
        self.provider_type = provider_type
        self.features = features or Features(provider)
        self.adopted = dict(adopted or {})  # job id -> the ftops labels it stands for
        self.emulates: str | None = None  # set by models(): the emulator's flavor, if it is one
        # Recognising jobs without metadata (``ftops.recognise``): the declared models, the
        # names of files seen (id -> name) and the fingerprint behind each fine-tuned model.
        self.expected = expected
        self.manager = deployments  # Azure's management plane, where the entry declares it
        self._names: dict[str, str] = {}
        self._trained: dict[str, str] = {}
        self._recognising = threading.Lock()  # reads run in several threads at once
        self.tag = repo_tag(repo) if provider_type in TAGGED_TYPES else None

    def _seen(self, file: RemoteFile) -> RemoteFile | None:
        """A listed file as this repository sees it (``ftops.identity.scoped_filename``)."""
        if self.tag is None:
            return file
        name = scoped_filename(file.filename, self.tag, untagged=self.provider_type == "azure")
        return None if name is None else replace(file, filename=name)

    # --- reads -------------------------------------------------------------------------------
    def files(self) -> tuple[RemoteFile, ...]:
        page = self.client.files.list(purpose=FINE_TUNE_PURPOSE, limit=FILES_PAGE, order="asc")
        found = tuple(filter(None, (self._seen(_to_file(f, self.provider)) for f in page)))
        with self._recognising:
            self._names.update((f.id, f.filename) for f in found)
        return found

    def _file_sha(self, file_id: str) -> str | None:
        """The sha256 a file's ftops name carries; a file not listed yet is looked up once."""
        if file_id not in self._names:
            try:
                seen = self._seen(_to_file(self.client.files.retrieve(file_id), self.provider))
                self._names[file_id] = seen.filename if seen else ""
            except openai.NotFoundError:
                self._names[file_id] = ""
        return sha256_from_filename(self._names[file_id])

    def _recognised(self, jobs: list[Job]) -> list[Job]:
        """Jobs with the labels of the declared model each is recognised as, where the
        provider may not have kept them."""
        if not self.expected or self.features.capabilities.job_metadata == "yes":
            return jobs
        with self._recognising:
            return list(label(jobs, self.expected, self._file_sha, repo=self.repo,
                              trained=self._trained))

    def jobs(self) -> tuple[Job, ...]:
        """This repository's ftops jobs: one metadata-filtered listing, paginated (a whole
        listing where the endpoint lacks the filter: see ``Features``), plus adopted jobs."""
        wanted = {"ftops_repo": self.repo}
        page = self.features.attempt(
            "metadata_filter",
            lambda: list(self.client.fine_tuning.jobs.list(limit=JOBS_PAGE, metadata=wanted)),
            lambda: list(self.client.fine_tuning.jobs.list(limit=JOBS_PAGE)))
        # Filtered here too: an endpoint may ignore the filter rather than refuse it.
        listed = self._recognised([to_job(j, self.provider) for j in page])
        adopted = [self.job(job_id) for job_id, labels in sorted(self.adopted.items())
                   if labels.items() >= wanted.items()]
        adopted = [replace(j, metadata={**j.metadata, **self.adopted[j.id]}) for j in adopted]
        return tuple(j for j in listed + adopted if j.metadata.items() >= wanted.items())

    def recent_jobs(self, since: int) -> tuple[Job, ...]:
        """This repository's jobs created at or after ``since`` (unix seconds). The listing is
        newest first, so only the pages back to ``since`` are read: one for most applies."""
        wanted = {"ftops_repo": self.repo}

        def newest(**filters: Any) -> list[Any]:
            found = []
            for job in self.client.fine_tuning.jobs.list(limit=JOBS_PAGE, **filters):
                if job.created_at < since:
                    break
                found.append(job)
            return found

        page = self.features.attempt("metadata_filter", lambda: newest(metadata=wanted), newest)
        listed = self._recognised([to_job(j, self.provider) for j in page])
        return tuple(j for j in listed if j.metadata.items() >= wanted.items())

    def models(self) -> tuple[RemoteModel, ...]:
        raw = self.client.models.with_raw_response.list()
        self.emulates = raw.headers.get(EMULATOR_HEADER) or None
        return tuple(_to_model(m, self.provider) for m in raw.parse())

    def calendar(self) -> str | None:
        """Whose dates apply here: the provider the emulator emulates (it follows the same
        catalog), Azure for Azure, OpenAI for OpenAI's own host; None for any other endpoint
        (a base_url or OPENAI_BASE_URL elsewhere), which keeps its own schedule. Known once
        ``models()`` has been read."""
        if self.emulates:
            return self.emulates
        if self.provider_type != "openai":
            return self.provider_type
        host = self.client.base_url.host
        return "openai" if host == "api.openai.com" or host.endswith(".openai.com") else None

    def read(self, budget: RequestBudget | None = None) -> Actual:
        """The whole account state the planner needs: O(pages) requests, not O(models); the
        three listings at once, so one round trip of latency rather than three. Within an
        apply each listing holds a slot of the run's ``budget``, so ``--parallel`` bounds
        the reads too."""
        def listing(read: Callable[[], T]) -> Callable[[], T]:
            return read if budget is None else partial(budget.call, read)

        with ThreadPoolExecutor(max_workers=4) as pool:
            files, jobs, models, deployed = (pool.submit(listing(self.files)),
                                             pool.submit(listing(self.jobs)),
                                             pool.submit(listing(self.models)),
                                             pool.submit(listing(self.deployments)))
            return Actual(files=files.result(), jobs=jobs.result(), models=models.result(),
                          deployments=deployed.result())

    def deployments(self) -> tuple[Deployment, ...]:
        """The deployments of the Azure resource (none where no management plane is set)."""
        return self.manager.list() if self.manager else ()

    def deploy(self, name: str, model: str, sku: str, capacity: int) -> Deployment:
        """Create or update deployment ``name`` to serve ``model``; returns once it is ready."""
        if self.manager is None:
            raise RemoteError(f"provider {self.provider} has no management plane to deploy in")
        return self.manager.create(name, model, sku, capacity)

    def undeploy(self, name: str) -> None:
        if self.manager is not None:
            self.manager.delete(name)

    def job(self, job_id: str) -> Job:
        return to_job(self.client.fine_tuning.jobs.retrieve(job_id), self.provider)

    def result_files(self, job_id: str) -> tuple[str, ...]:
        """The ids of the files the job reported its results in (none while it runs)."""
        return tuple(self.client.fine_tuning.jobs.retrieve(job_id).result_files or ())

    def events(self, job_id: str) -> list[JobEvent]:
        """A job's events, oldest first (the API lists newest first)."""
        page = self.client.fine_tuning.jobs.list_events(job_id, limit=100)
        events = [JobEvent(e.id, e.created_at, e.level, e.message) for e in page]
        return events[::-1]

    def file_text(self, file_id: str) -> str:
        return self.client.files.content(file_id).text

    def file_bytes(self, file_id: str) -> bytes:
        return self.client.files.content(file_id).content

    def with_retries(self, retries: int) -> Remote:
        """The same account through a client that retries 429/5xx up to ``retries`` times."""
        patient = copy.copy(self)
        patient.client = self.client.with_options(max_retries=retries)
        return patient

    def chat(self, model: str, messages: list[dict[str, Any]], *, seed: int) -> ChatReply:
        """One deterministic-as-possible completion (temperature 0, fixed seed)."""
        obj = self.client.chat.completions.create(
            model=model, messages=messages, temperature=0, seed=seed  # type: ignore[arg-type]
        )
        usage = obj.usage
        return ChatReply(
            text=(obj.choices[0].message.content or "") if obj.choices else "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    # --- changes -----------------------------------------------------------------------------
    def upload(self, path: Path, sha256: str, *, parallel: int = 4,
               threshold: int = MULTIPART_THRESHOLD, part_size: int = PART_SIZE,
               budget: RequestBudget | None = None) -> RemoteFile:
        """Upload a dataset under its hash-carrying name; large files in parallel parts.

        Each request takes a slot of ``budget`` (the run's; else one of ``parallel`` slots),
        and the bytes it sends are read only once it holds it.
        The bytes sent must hash to ``sha256`` before the file exists: a dataset edited since
        it was planned would otherwise live on under a name that lies. The API checks the byte
        count on complete, and TLS the transport.
        """
        name = tagged_filename(sha256, self.tag) if self.tag else dataset_filename(sha256)
        size = path.stat().st_size
        slots = budget or RequestBudget(parallel)
        made = partial(self._made, dataset_filename(sha256))

        def whole() -> RemoteFile:
            with slots.slot():
                data = path.read_bytes()
                check_sha256(path, hashlib.sha256(data).hexdigest(), sha256)
                obj = self.client.files.create(file=(name, data), purpose=FINE_TUNE_PURPOSE)
            return made(obj)

        def parts() -> RemoteFile:
            return made(upload_parts(self.client, path, name, size, sha256, budget=slots,
                                     part_size=part_size))

        if size < threshold:
            return whole()
        return self.features.attempt("uploads", parts, whole)

    def _made(self, seen_as: str, obj: Any) -> RemoteFile:
        """An uploaded file, under the name the planner knows it by (``seen_as``) where the
        name sent carries the repository's tag."""
        made = _to_file(obj, self.provider)
        return replace(made, filename=seen_as) if self.tag else made

    def create_job(self, request: JobRequest) -> Job:
        method = request.method
        args: dict[str, Any] = {
            "model": request.model,
            "training_file": request.training_file,
            "method": {"type": method,
                       method: {"hyperparameters": dict(request.hyperparameters)}},
            "metadata": dict(request.metadata),
        }
        if request.validation_file:
            args["validation_file"] = request.validation_file
        if request.suffix:
            args["suffix"] = request.suffix
        if request.seed is not None:
            args["seed"] = request.seed
        if request.training_type:
            args["extra_body"] = {"trainingType": TRAINING_TYPES[request.training_type]}
        try:
            created = self.client.fine_tuning.jobs.create(**args)
        except openai.BadRequestError as exc:
            # A file the API does not know is refused with its field as ``param``.
            gone = (file_gone(request, api_error_message(exc), self._exists)
                    if exc.param in FileGone.PARAMS else None)
            if gone is None:
                raise
            raise gone from exc
        job = to_job(created, self.provider)
        # What ftops sent, whether or not the provider keeps it: the job is known as ours.
        return replace(job, metadata={**request.metadata, **job.metadata})

    def _exists(self, file_id: str) -> bool:
        """False only when the provider answers that it has no such file."""
        try:
            self.client.files.retrieve(file_id)
        except openai.NotFoundError:
            return False
        except openai.APIError:
            return True  # cannot tell: the create's own error is the one to show
        return True

    def cancel_job(self, job_id: str) -> None:
        self.client.fine_tuning.jobs.cancel(job_id)

    def delete_file(self, file_id: str) -> None:
        self.client.files.delete(file_id)

    def delete_model(self, model_id: str) -> None:
        self.client.models.delete(model_id)
