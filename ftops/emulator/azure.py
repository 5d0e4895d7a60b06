"""Azure OpenAI's dialect: ``/openai/...`` paths, a required ``api-version``, an ``api-key``.

Errors raised before a request reaches the service (key, api-version, unknown URL or deployment)
have Azure's gateway body ``{"error": {"code", "message"}}``; the service's own errors keep
OpenAI's body, as Azure passes them through. Any non-empty api-version is accepted, and a
deployment is simply named after its model (base snapshot, alias or ``ft:`` id).
"""

from __future__ import annotations

from collections.abc import Callable
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
NO_DEPLOYMENT = (
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


def admit_v1(request: Request) -> None:
    """The v1 surface takes a key as ``api-key`` or a bearer (a key or an Entra token), and no
    api-version (Microsoft's "Azure OpenAI v1 API" guide: ``OpenAI(base_url=f"{endpoint}/openai/
    v1/", api_key=...)``, which sends ``Authorization: Bearer``)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer" and token.strip()
    if not request.headers.get("api-key", "").strip() and not bearer:
        raise AzureError(401, "401", _NO_KEY)


def admit_arm(request: Request, valid: Callable[[str], bool]) -> None:
    """ARM wants an Entra token it can verify (``valid``), and an api-version."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AzureError(401, "AuthenticationFailed",
                         "Authentication failed. The 'Authorization' header is missing.")
    if not valid(token.strip()):
        raise AzureError(401, "InvalidAuthenticationToken",
                         "The access token is invalid. Management calls take a Microsoft Entra "
                         "token, not an api-key.")
    if not request.args.get("api-version", "").strip():
        raise AzureError(400, "MissingApiVersionParameter", _NO_VERSION)


def arm_unknown_url(request: Request) -> ApiError:
    return AzureError(404, "InvalidResourceType",
                      f"The resource path '{request.path}' is not known to the emulator.")


def unknown_url(request: Request) -> ApiError:
    return AzureError(404, "404", "Resource not found")


def deployment_completion(ctx: Ctx, request: Request, deployment: str) -> Reply:
    """Chat Completions on a deployment: the path names the model, the body's model is ignored."""
    body = chat.parse(request)
    model = chat.resolve(ctx, deployment)
    if model is None:
        raise AzureError(404, "DeploymentNotFound", NO_DEPLOYMENT)
    # A retired model answers with the service's own (OpenAI-shaped) 404, not the gateway's:
    # the deployment exists, its model no longer does (see ``retirement``).
    retirement.check_serving(ctx, deployment, model.id)
    return chat.complete(ctx, body, model)
