"""Fireworks AI's dialect (``Emulator(flavor="fireworks")``, ``ftops emulator --flavor
fireworks``): the resource-style control plane under ``/v1/accounts/{account}/...`` and the
OpenAI-compatible inference API, as the official SDK sends them with ``base_url`` set to the
emulator's root (``fireworks.Fireworks(base_url=emu.url, account_id=...)``).

Followed: the ``fireworks-ai`` SDK 1.2.30 (Stainless-generated, ``from fireworks import
Fireworks``): its resources ``datasets``, ``supervised_fine_tuning_jobs``, ``models`` and
``chat.completions`` and their types (paths, camelCase aliases, ``pageSize``/``pageToken`` and
``nextPageToken`` pagination, ``JOB_STATE_*`` states, ``Status{code, message}``); with a
``base_url`` given the SDK sends chat to ``/v1/chat/completions`` (else to
``https://api.fireworks.ai/inference/v1/chat/completions``), so both are served. Docs pages:
docs.fireworks.ai/api-reference/get-supervised-fine-tuning-job (the job object) and
fireworks.ai/docs/guides/inference-error-codes (statuses). Auth: ``Authorization: Bearer``.

Served: datasets (create with a client-chosen ``datasetId``, ``:upload`` of one multipart
``file`` up to 150 MB, get, list, delete), supervised fine-tuning jobs (create, get, list,
``:cancel``), DPO jobs (the same, ``fireworks_dpo``), models of the account (list, get,
delete; ``accounts/fireworks/models`` lists the fine-tunable bases of
``fireworks_data.BASES``) and chat completions of a base or fine-tuned model (answered as
``chat`` answers, from the training data). Jobs follow the shared timeline:
``JOB_STATE_CREATING`` (create's answer), ``VALIDATING``, ``PENDING``, ``RUNNING``,
``WRITING_RESULTS``, then ``COMPLETED``, ``FAILED`` (a malformed or too small dataset) or
``CANCELLED``; faults, persistence and the request log are the server's.

Not confirmed, the emulator's best knowledge: the control plane's error body is grpc-gateway's
``{"code": <gRPC number>, "message", "details": []}`` (the inference API's is OpenAI-like);
the exact messages; the numeric ranges of ``fireworks_jobs.NUMBERS`` beyond the SDK's "LoRA
rank between 4 and 64"; the default context length; that the job shows ``outputModel`` as a full
model name; that an uploaded dataset cannot be uploaded again; that ``filter`` is AIP-160 (the
emulator refuses any filter). Not served: ``getUploadEndpoint``/``getDownloadEndpoint`` (signed
URLs), reinforcement jobs, job deletion and ``:resume``, deployments (a fine-tuned model
answers chat without one here, as serverless LoRA does on the bases that offer it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from ftops.emulator import fireworks_data as data
from ftops.emulator import fireworks_dpo as dpo
from ftops.emulator import fireworks_jobs as sft
from ftops.emulator.common import ApiError, http_message
from ftops.emulator.fireworks_common import FireworksError, InferenceError

if TYPE_CHECKING:
    from ftops.emulator.routes import Admit, Flavour

_ACCOUNT = "/accounts/<account>"
_DATASET = _ACCOUNT + "/datasets/<dataset_id>"
_JOB = _ACCOUNT + "/supervisedFineTuningJobs/<job_id>"
_DPO = _ACCOUNT + "/dpoJobs"


def _key(request: Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def admit(request: Request) -> None:
    if not _key(request):
        raise FireworksError("UNAUTHENTICATED", "missing or invalid API key: send "
                             "Authorization: Bearer <FIREWORKS_API_KEY>")


def admit_inference(request: Request) -> None:
    if not _key(request):
        raise InferenceError(401, "The API key you provided is invalid.", "unauthorized")


def unknown_url(request: Request) -> ApiError:
    return FireworksError("NOT_FOUND", "Not Found")


def unknown_inference_url(request: Request) -> ApiError:
    return InferenceError(404, f"Not Found: {request.method} {request.path}", "NOT_FOUND")


def http_error(exc: HTTPException) -> ApiError:
    error = FireworksError("INVALID_ARGUMENT", http_message(exc))
    error.status = exc.code or 400
    return error


def inference_http_error(exc: HTTPException) -> ApiError:
    return InferenceError(exc.code or 400, http_message(exc))


def _plain(check: Callable[[Request], None]) -> Admit:
    return lambda request, _valid: check(request)


def flavour() -> Flavour:
    """The dialect's routing table; built when ``routes`` registers it (``routes`` defines the
    table's types, so they are imported here, once that module has them)."""
    from ftops.emulator.routes import Flavour, Route, Surface

    control = (
        Route("POST", _ACCOUNT + "/datasets", data.create_dataset, creates=True),
        Route("GET", _ACCOUNT + "/datasets", data.list_datasets),
        Route("GET", _DATASET, data.get_dataset),
        Route("DELETE", _DATASET, data.delete_dataset),
        Route("POST", _DATASET + ":upload", data.upload_dataset, creates=True),
        Route("POST", _ACCOUNT + "/supervisedFineTuningJobs", sft.create_job, creates=True),
        Route("GET", _ACCOUNT + "/supervisedFineTuningJobs", sft.list_jobs),
        Route("GET", _JOB, sft.get_job),
        Route("POST", _JOB + ":cancel", sft.cancel_job),
        Route("POST", _DPO, dpo.create_job, creates=True),
        Route("GET", _DPO, dpo.list_jobs),
        Route("GET", _DPO + "/<job_id>", dpo.get_job),
        Route("POST", _DPO + "/<job_id>:cancel", dpo.cancel_job),
        Route("GET", _ACCOUNT + "/models", data.list_models),
        Route("GET", _ACCOUNT + "/models/<model_id>", data.get_model),
        Route("DELETE", _ACCOUNT + "/models/<model_id>", data.delete_model),
        Route("POST", "/chat/completions", data.completion),
    )
    inference = Surface("/inference/v1", (Route("POST", "/chat/completions", data.completion),),
                        _plain(admit_inference),
                        unknown_inference_url, inference_http_error)
    api = Surface("/v1", control, _plain(admit), unknown_url, http_error)
    return Flavour("", (inference, api))
