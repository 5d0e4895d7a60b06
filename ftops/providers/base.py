"""What the layers above see of one provider's account: the ``Account`` protocol, and the
provider-neutral values it returns besides the frozen dataclasses of ``ftops.state``.

apply, evals, export, follow and the commands are written against these methods; each provider
type's module implements them on top of its SDK (``ftops.providers.openai`` serves ``openai``,
compatible endpoints and ``azure``; ``nebius`` extends it; ``together`` and ``fireworks`` use
their own SDKs), and no SDK object crosses this line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ftops.errors import RemoteError
from ftops.state import Actual, Deployment, Job, RemoteFile, RemoteModel
from ftops.stop import RequestBudget


@dataclass(frozen=True)
class ChatReply:
    text: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class JobEvent:
    id: str
    created_at: int
    level: str
    message: str


@dataclass(frozen=True)
class JobRequest:
    """Everything a job is created with; ``training_type`` only where the provider takes one
    (Azure's ``trainingType``)."""

    model: str
    training_file: str
    validation_file: str | None
    method: str
    hyperparameters: Mapping[str, Any]
    suffix: str | None
    seed: int | None
    metadata: Mapping[str, str]
    training_type: str | None = None


class FileGone(RemoteError):
    """A job create named a file the provider does not know (deleted since it was uploaded,
    maybe by a concurrent apply keeping its own copy): ``param`` is the request field,
    ``training_file`` or ``validation_file``. Every provider type raises it for this from
    ``create_job``, so that apply recovers alike on each (``Executor._create_job``) without
    knowing any SDK's exceptions."""

    PARAMS = ("training_file", "validation_file")

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message, hint="run `ftops apply` again")
        self.param = param


def file_gone(request: JobRequest, message: str,
              exists: Callable[[str], bool]) -> FileGone | None:
    """The ``FileGone`` for a create refused with ``message``, asking the provider
    (``exists``) which of the request's files it no longer knows; None when it knows both."""
    for param in FileGone.PARAMS:
        file_id = getattr(request, param)
        if file_id and not exists(file_id):
            return FileGone(f"{message} ({param} {file_id} is gone)", param=param)
    return None


class Account(Protocol):
    """One provider's account: read in pages, changed one request at a time."""

    @property
    def provider(self) -> str:
        """The ``providers`` entry this account belongs to."""
        ...

    # --- reads -------------------------------------------------------------------------------
    def read(self, budget: RequestBudget | None = None) -> Actual:
        """Files, this repository's jobs and models: everything the planner compares (each
        listing in a slot of ``budget`` when one is given)."""
        ...

    def files(self) -> tuple[RemoteFile, ...]: ...

    def jobs(self) -> tuple[Job, ...]:
        """This repository's ftops jobs carrying ``metadata`` (adopted jobs included)."""
        ...

    def models(self) -> tuple[RemoteModel, ...]: ...

    def deployments(self) -> tuple[Deployment, ...]:
        """What serves models (Azure); () where the provider has no deployments."""
        ...

    def recent_jobs(self, since: int) -> tuple[Job, ...]:
        """This repository's jobs created at or after ``since`` (unix seconds)."""
        ...

    def job(self, job_id: str) -> Job: ...

    def events(self, job_id: str) -> list[JobEvent]:
        """A job's events, oldest first."""
        ...

    def result_files(self, job_id: str) -> tuple[str, ...]:
        """The ids of the files a job reported its results (metrics CSV) in."""
        ...

    def file_text(self, file_id: str) -> str: ...

    def file_bytes(self, file_id: str) -> bytes: ...

    def chat(self, model: str, messages: list[dict[str, Any]], *, seed: int) -> ChatReply:
        """One deterministic-as-possible completion (temperature 0, fixed seed)."""
        ...

    def calendar(self) -> str | None:
        """Whose catalog dates apply to this endpoint; None for an endpoint with its own."""
        ...

    def with_retries(self, retries: int) -> Account:
        """The same account, retrying 429/5xx up to ``retries`` times."""
        ...

    # --- changes -----------------------------------------------------------------------------
    def upload(self, path: Path, sha256: str, *, parallel: int = ..., threshold: int = ...,
               part_size: int = ..., budget: RequestBudget | None = None) -> RemoteFile:
        """Upload a dataset under its hash-carrying name, checking it still hashes to
        ``sha256``."""
        ...

    def create_job(self, request: JobRequest) -> Job: ...

    def cancel_job(self, job_id: str) -> None: ...

    def delete_file(self, file_id: str) -> None: ...

    def delete_model(self, model_id: str) -> None: ...

    def deploy(self, name: str, model: str, sku: str, capacity: int) -> Deployment:
        """Create or update a deployment; returns once it serves ``model``."""
        ...

    def undeploy(self, name: str) -> None: ...


class NoDeployments:
    """For a provider whose fine-tuned models answer without a deployment: nothing to list,
    and nothing to deploy (the spec resolver allows ``deploy`` on Azure only)."""

    provider: str

    def deployments(self) -> tuple[Deployment, ...]:
        return ()

    def deploy(self, name: str, model: str, sku: str, capacity: int) -> Deployment:
        raise RemoteError(f"provider {self.provider} has no deployments")

    def undeploy(self, name: str) -> None:
        """Nothing was ever deployed here."""
