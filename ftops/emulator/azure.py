"""Azure OpenAI's dialect: ``/openai/...`` paths, a required ``api-version``, an ``api-key``.

Errors raised before a request reaches the service (key, api-version, unknown URL or deployment)
have Azure's gateway body ``{"error": {"code", "message"}}``; the service's own errors keep
OpenAI's body, as Azure passes them through. Any non-empty api-version is accepted, and a
deployment is simply named after its model (base snapshot, alias or ``ft:`` id).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from ftops.emulator import chat, retirement
from ftops.emulator.common import ApiError, Ctx, Reply

_NO_KEY = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
_NO_VERSION = "The api-version query parameter (?api-version=) is required for all requests."
_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)


class AzureError(ApiError):
    """An error answered with Azure's gateway body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message, code=code)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def admit(request: Request) -> None:
    """Raises the error Azure answers a request without a key or without an api-version."""
    if not request.headers.get("api-key", "").strip():
        raise AzureError(401, "401", _NO_KEY)
    if not request.args.get("api-version", "").strip():
        raise AzureError(400, "MissingApiVersionParameter", _NO_VERSION)


def unknown_url(request: Request) -> ApiError:
    return AzureError(404, "404", "Resource not found")


def deployment_completion(ctx: Ctx, request: Request, deployment: str) -> Reply:
    """Chat Completions on a deployment: the path names the model, the body's model is ignored."""
    body = chat.parse(request)
    model = chat.resolve(ctx, deployment)
    if model is None:
        raise AzureError(404, "DeploymentNotFound", _NO_DEPLOYMENT)
    # A retired model answers with the service's own (OpenAI-shaped) 404, not the gateway's:
    # the deployment exists, its model no longer does (see ``retirement``).
    retirement.check_serving(ctx, deployment, model.id)
    return chat.complete(ctx, body, model)
