"""The routing table of each flavour (dialect) of the API: its surfaces, paths, handlers and
admission.

Azure's flavour has three surfaces on one server: the management plane (ARM deployments,
``/subscriptions/...``, ``deployments``), the v1 API (``/openai/v1/...``, the plain
``openai.OpenAI`` client, Azure's job rules always on) and the api-version API
(``/openai/...``, ``AzureOpenAI``), which keeps its earlier behaviour: its chat path names a
deployment after its model, and Azure's job rules apply there only with
``Emulator(azure_rules=True)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from ftops.emulator import (
    azure,
    azure_jobs,
    chat,
    deployments,
    files,
    fireworks,
    jobs,
    models,
    nebius,
    together,
)
from ftops.emulator.common import ApiError, Ctx, Handler, Reply, http_error, http_message

Admit = Callable[[Request, Callable[[str], bool]], None]  # (request, is this Entra token ours)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # werkzeug rule syntax, relative to the flavour's prefix
    handler: Handler
    creates: bool = False  # eligible for the "500-after-create" fault


@dataclass(frozen=True)
class Surface:
    """One API of a flavour: where its paths live, what a request must carry to be served
    (``admit`` raises the error otherwise), how an unknown URL is answered, and how an error
    werkzeug raises while reading a request (a form too large, say) is."""

    prefix: str
    routes: tuple[Route, ...]
    admit: Admit
    unknown_url: Callable[[Request], ApiError]
    http_error: Callable[[HTTPException], ApiError]
    azure_rules: bool | None = False  # Azure's job rules; None: as the Emulator option says

    def serves(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


@dataclass(frozen=True)
class Flavour:
    """A dialect: its surfaces, the first whose prefix a path starts with serving it (the last
    serves any other path), and the prefix ``Emulator.base_url`` names."""

    prefix: str
    surfaces: tuple[Surface, ...]

    def surface(self, path: str) -> Surface:
        return next((s for s in self.surfaces if s.serves(path)), self.surfaces[-1])


def _plain(admit: Callable[[Request], None]) -> Admit:
    return lambda request, _valid: admit(request)


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
OPENAI = Flavour("/v1", (Surface(
    "/v1",
    (*SERVICE_ROUTES, Route("POST", "/chat/completions", chat.create_completion)),
    _plain(_bearer),
    _invalid_url,
    http_error,
),))


def _azure_delete_model(ctx: Ctx, request: Request, model: str) -> Reply:
    deployments.refuse_deployed_delete(ctx, model)
    return models.delete_model(ctx, request, model)


def _azure_service() -> tuple[Route, ...]:
    """The service's endpoints as Azure answers them: jobs made under its rules shown its way,
    and a deployed model kept from deletion."""
    return tuple(
        Route(r.method, r.path,
              _azure_delete_model if r.handler is models.delete_model
              else azure_jobs.rendered(r.handler), r.creates)
        for r in SERVICE_ROUTES
    )


_DEPLOYMENT = ("/<sub>/resourceGroups/<rg>/providers/Microsoft.CognitiveServices/accounts/"
               "<account>/deployments")
ARM = Surface(
    "/subscriptions",
    (
        Route("GET", _DEPLOYMENT, deployments.list_deployments),
        Route("PUT", _DEPLOYMENT + "/<name>", deployments.put, creates=True),
        Route("GET", _DEPLOYMENT + "/<name>", deployments.get),
        Route("DELETE", _DEPLOYMENT + "/<name>", deployments.delete),
        Route("GET", "/<sub>/providers/Microsoft.CognitiveServices/locations/<location>/"
              "operationResults/<operation>", deployments.operation),
    ),
    azure.admit_arm,
    azure.arm_unknown_url,
    _azure_http_error,
)
# Paths as openai.OpenAI(base_url=f"{endpoint}/openai/v1/") sends them.
AZURE_V1 = Surface(
    "/openai/v1",
    (*_azure_service(), Route("POST", "/chat/completions", deployments.v1_completion)),
    _plain(azure.admit_v1),
    azure.unknown_url,
    _azure_http_error,
    azure_rules=True,
)
# Paths as openai.AzureOpenAI(azure_endpoint=...) sends them: deployment-based endpoints (chat)
# under /openai/deployments/{model}, everything else under /openai.
AZURE_VERSIONED = Surface(
    "/openai",
    (
        *_azure_service(),
        Route(
            "POST",
            "/deployments/<deployment>/chat/completions",
            azure.deployment_completion,
        ),
    ),
    _plain(azure.admit),
    azure.unknown_url,
    _azure_http_error,
    azure_rules=None,
)
AZURE = Flavour("/openai", (ARM, AZURE_V1, AZURE_VERSIONED))
NEBIUS = Flavour("/v1", (Surface("/v1", tuple(Route(*row) for row in nebius.ROUTES),
                                 _plain(nebius.admit), nebius.unknown_url, nebius.http_error),))
FLAVORS: dict[str, Flavour] = {"openai": OPENAI, "azure": AZURE, "nebius": NEBIUS,
                             "together": together.flavour(), "fireworks": fireworks.flavour()}
