"""The routing table of each flavour (dialect) of the API: paths, handlers, admission."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from ftops.emulator import azure, chat, files, jobs, models
from ftops.emulator.common import ApiError, Handler, http_error, http_message


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # werkzeug rule syntax, relative to the flavour's prefix
    handler: Handler
    creates: bool = False  # eligible for the "500-after-create" fault


@dataclass(frozen=True)
class Flavour:
    """One dialect of the API: where its paths live, what a request must carry to be served
    (``admit`` raises the error otherwise), how an unknown URL is answered, and how an error
    werkzeug raises while reading a request (a form too large, say) is."""

    prefix: str
    routes: tuple[Route, ...]
    admit: Callable[[Request], None]
    unknown_url: Callable[[Request], ApiError]
    http_error: Callable[[HTTPException], ApiError]


def _bearer(request: Request) -> None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, _NO_KEY)


def _invalid_url(request: Request) -> ApiError:
    return ApiError(404, f"Invalid URL ({request.method} {request.path})")


def _azure_http_error(exc: HTTPException) -> ApiError:
    # A request refused while it is read never reaches the service: Azure's gateway answers it
    # with its own body, its code the status as with its 401 and 404 (``azure``).
    status = exc.code or 400
    return azure.AzureError(status, str(status), http_message(exc))


# The service's endpoints, common to both flavours.
SERVICE_ROUTES: tuple[Route, ...] = (
    Route("POST", "/files", files.create_file, creates=True),
    Route("GET", "/files", files.list_files),
    Route("GET", "/files/<file_id>", files.retrieve_file),
    Route("DELETE", "/files/<file_id>", files.delete_file),
    Route("GET", "/files/<file_id>/content", files.file_content),
    Route("POST", "/uploads", files.create_upload, creates=True),
    Route("POST", "/uploads/<upload_id>/parts", files.add_part, creates=True),
    Route("POST", "/uploads/<upload_id>/complete", files.complete_upload, creates=True),
    Route("POST", "/uploads/<upload_id>/cancel", files.cancel_upload),
    Route("POST", "/fine_tuning/jobs", jobs.create_job, creates=True),
    Route("GET", "/fine_tuning/jobs", jobs.list_jobs),
    Route("GET", "/fine_tuning/jobs/<job_id>", jobs.retrieve_job),
    Route("POST", "/fine_tuning/jobs/<job_id>/cancel", jobs.cancel_job),
    Route("POST", "/fine_tuning/jobs/<job_id>/pause", jobs.pause_job),
    Route("POST", "/fine_tuning/jobs/<job_id>/resume", jobs.resume_job),
    Route("GET", "/fine_tuning/jobs/<job_id>/events", jobs.list_events),
    Route("GET", "/fine_tuning/jobs/<job_id>/checkpoints", jobs.list_checkpoints),
    Route("GET", "/models", models.list_models),
    Route("GET", "/models/<path:model>", models.retrieve_model),
    Route("DELETE", "/models/<path:model>", models.delete_model),
)
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
OPENAI = Flavour(
    "/v1",
    (*SERVICE_ROUTES, Route("POST", "/chat/completions", chat.create_completion)),
    _bearer,
    _invalid_url,
    http_error,
)
# Paths as openai.AzureOpenAI(azure_endpoint=...) sends them: deployment-based endpoints (chat)
# under /openai/deployments/{model}, everything else under /openai.
AZURE = Flavour(
    "/openai",
    (
        *SERVICE_ROUTES,
        Route(
            "POST",
            "/deployments/<deployment>/chat/completions",
            azure.deployment_completion,
        ),
    ),
    azure.admit,
    azure.unknown_url,
    _azure_http_error,
)
FLAVORS: dict[str, Flavour] = {"openai": OPENAI, "azure": AZURE}
