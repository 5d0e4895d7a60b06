"""Type ``nebius``: Nebius Token Factory (formerly Nebius AI Studio) through the official
``openai`` SDK pointed at its OpenAI-compatible API.

The paths, objects and pagination are OpenAI's, so ``Account`` is ``openai.Remote`` (the same
SDK, the same conversions into ftops's state types) with what differs overridden: the create
body (absolute ``learning_rate``, LoRA settings, no ``metadata``, which Nebius does not take),
the capabilities (no metadata filter, no Uploads API, job metadata never kept: jobs are
recognised from what they show, ``ftops.recognise``) and errors (FastAPI's ``detail`` bodies,
translated into one-line ``RemoteError``s). Dataset names carry the repository's tag
(``openai.TAGGED_TYPES``). Sources: ``ftops.emulator.nebius``'s docstring.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
from openai import DefaultHttpxClient, OpenAI

from ftops.errors import FtopsError, RemoteError
from ftops.methods import RANGES
from ftops.providers import loopback
from ftops.providers.base import JobEvent, JobRequest, file_gone
from ftops.providers.features import METADATA_FREE, Features
from ftops.providers.openai import Remote, to_job
from ftops.providers.uploads import MULTIPART_THRESHOLD, PART_SIZE
from ftops.recognise import Expected
from ftops.state import Job, RemoteFile
from ftops.stop import RequestBudget

DEFAULT_BASE_URL = "https://api.tokenfactory.nebius.com/v1/"
Range = tuple[float, float] | None  # inclusive bounds; None: a boolean
# method -> ftops hyperparameter -> (wire name, range), from ``ftops.methods.RANGES`` (the one
# table the spec check reads too). The common keys map where they mean the same
# (``learning_rate_multiplier`` does not: Nebius takes an absolute ``learning_rate``).
HYPERPARAMETERS: dict[str, dict[str, tuple[str, Range]]] = {
    method: {key: (allowed.wire, allowed.bounds) for key, allowed in keys.items()}
    for method, keys in RANGES["nebius"].items()
}


def make_client(base_url: str | None, key: str, max_retries: int) -> OpenAI:
    """The SDK client for a ``nebius`` entry; a loopback endpoint ignores proxy settings."""
    url = base_url or DEFAULT_BASE_URL
    http_client = (DefaultHttpxClient(trust_env=False, verify=loopback.tls())
                   if loopback.is_loopback(url) else None)
    return OpenAI(api_key=key, base_url=url, max_retries=max_retries, http_client=http_client)


def _detail(body: object) -> str:
    """Nebius' words: FastAPI's ``detail`` (a string, or validation entries), else OpenAI's."""
    if isinstance(body, dict):
        detail = body.get("detail", body.get("error"))
        if isinstance(detail, str):
            return detail
        if isinstance(detail, dict) and detail.get("message"):
            return str(detail["message"])
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            where = ".".join(str(p) for p in detail[0].get("loc", ()) if p != "body")
            return f"{where}: {detail[0].get('msg', '')}" if where else str(detail[0].get("msg"))
    return ""


def remote_error(exc: openai.APIStatusError, provider: str) -> RemoteError:
    code = exc.code or (exc.body.get("code") if isinstance(exc.body, dict) else None)
    words = _detail(exc.body) or "no message"
    coded = f" {code}" if code else ""
    return RemoteError(f"provider {provider} (nebius) answered {exc.status_code}{coded}: {words}")


def wire_hyperparameters(method: str, given: Mapping[str, Any], provider: str) -> dict[str, Any]:
    """ftops's hyperparameters as Nebius names them; FtopsError for one it does not take."""
    table = HYPERPARAMETERS.get(method)
    if table is None:
        raise FtopsError(f"provider {provider} (nebius) has no {method} fine-tuning",
                         hint=f"methods: {', '.join(HYPERPARAMETERS)}")
    wire: dict[str, Any] = {}
    for key, value in given.items():
        if value == "auto":  # Nebius has no "auto": its default applies
            continue
        if key not in table:
            raise FtopsError(f"provider {provider} (nebius) takes no hyperparameter {key}",
                             hint="use learning_rate (absolute) instead of "
                                  "learning_rate_multiplier" if key.startswith("learning")
                             else f"known: {', '.join(table)}")
        wire[table[key][0]] = value
    return wire


class Account(Remote):
    """A Nebius Token Factory account (an ``Account``): ``openai.Remote`` with Nebius' body,
    capabilities and errors."""

    def __init__(self, client: OpenAI, *, repo: str, provider: str = "nebius",
                 adopted: Mapping[str, Mapping[str, str]] | None = None,
                 expected: tuple[Expected, ...] = (), features: Features | None = None) -> None:
        super().__init__(client, repo=repo, provider=provider,
                         features=features or Features(provider, METADATA_FREE),
                         adopted=adopted, provider_type="nebius", expected=expected)

    @contextlib.contextmanager
    def _translated(self, *, gone_is_done: bool = False) -> Iterator[None]:
        try:
            yield
        except openai.NotFoundError as exc:
            if not gone_is_done:
                raise remote_error(exc, self.provider) from None
        except openai.RateLimitError:
            raise  # apply waits for the next run on a 429 (``Executor._create_job``)
        except openai.APIStatusError as exc:
            raise remote_error(exc, self.provider) from None

    def with_retries(self, retries: int) -> Account:
        patient = super().with_retries(retries)
        assert isinstance(patient, Account)
        return patient

    def job(self, job_id: str) -> Job:
        with self._translated():
            return super().job(job_id)

    def events(self, job_id: str) -> list[JobEvent]:
        with self._translated():
            return super().events(job_id)

    def upload(self, path: Path, sha256: str, *, parallel: int = 4,
               threshold: int = MULTIPART_THRESHOLD, part_size: int = PART_SIZE,
               budget: RequestBudget | None = None) -> RemoteFile:
        with self._translated():
            return super().upload(path, sha256, parallel=parallel, threshold=threshold,
                                  part_size=part_size, budget=budget)

    def create_job(self, request: JobRequest) -> Job:
        if request.training_type:
            raise FtopsError(f"provider {self.provider} (nebius) takes no training_type")
        hyper = wire_hyperparameters(request.method, request.hyperparameters, self.provider)
        args: dict[str, Any] = {
            "model": request.model,
            "training_file": request.training_file,
            "method": {"type": request.method, request.method: {"hyperparameters": hyper}},
        }
        if request.validation_file:
            args["validation_file"] = request.validation_file
        if request.suffix:
            args["suffix"] = request.suffix
        if request.seed is not None:
            args["seed"] = request.seed
        with self._translated():
            try:
                job = self.client.fine_tuning.jobs.create(**args)
            except (openai.BadRequestError, openai.NotFoundError) as exc:
                # Nebius names no ``param``: which file, if any, is gone is asked of it.
                gone = file_gone(request, remote_error(exc, self.provider).message,
                                 self._exists)
                if gone is None:
                    raise
                raise gone from None
        # Nebius keeps no metadata: the job is known as ours by what ftops sent.
        return replace(to_job(job, self.provider), metadata=dict(request.metadata))

    def cancel_job(self, job_id: str) -> None:
        with self._translated(gone_is_done=True):
            self.client.fine_tuning.jobs.cancel(job_id)

    def delete_file(self, file_id: str) -> None:
        with self._translated(gone_is_done=True):
            self.client.files.delete(file_id)

    def delete_model(self, model_id: str) -> None:
        with self._translated(gone_is_done=True):
            self.client.models.delete(model_id)
