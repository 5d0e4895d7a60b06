"""Azure's management plane for deployments (ARM), and the data plane's use of them.

``PUT/GET/DELETE {root}/subscriptions/{sub}/resourceGroups/{rg}/providers/
Microsoft.CognitiveServices/accounts/{account}/deployments/{name}?api-version=...`` and the
list, as the real ``azure-mgmt-cognitiveservices`` 14.1 client sends them (its default
api-version is 2025-09-01; any non-empty one is accepted). Bodies are ARM's: ``{"id", "name",
"type", "sku": {"name", "capacity"}, "properties": {"model": {"format", "name", "version"},
"provisioningState"}}``, errors ``{"error": {"code", "message"}}``, lists ``{"value",
"nextLink"}``.

A create answers 201 (an update 200) with an ``Azure-AsyncOperation`` header, whose operation
reads ``InProgress`` until the deployment is provisioned, then ``Succeeded``; the client's
poller (``ARMPolling`` with ``final-state-via: azure-async-operation``, azure-mgmt-core 1.6)
then reads the deployment itself. ``provisioningState`` is ``Creating`` (``Updating``) until
then: half the emulator's ``job_seconds``, so 0 provisions at once. A delete answers 200, or 204
for a deployment that does not exist (ARM's rule for DELETE).

Unconfirmed, from memory of Azure CLI output rather than a recording: a model the account cannot
deploy (unknown, or a fine-tune whose job has not succeeded) is 400
``DeploymentModelNotSupported`` "The model 'Format:OpenAI,Name:...,Version:...' of account
deployment is not supported."; an unknown sku 400 ``InvalidResourceProperties``; a missing
deployment 404 ``DeploymentNotFound``; deleting a deployed fine-tuned model 409 ``Conflict``.
A base model deploys as its name and version (``gpt-4.1`` + ``2025-04-14``), a fine-tuned one
as its full id and version ``1`` (Microsoft's "Deploy a fine-tuned model" REST sample).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from werkzeug.wrappers import Request

from ftops import catalog
from ftops.emulator import chat, retirement
from ftops.emulator.azure import NO_DEPLOYMENT, AzureError
from ftops.emulator.common import Ctx, Reply, parse_json
from ftops.emulator.store import DeploymentRec
from ftops.modelid import parse_fine_tuned

SKUS = {"standard": "Standard", "globalstandard": "GlobalStandard", "developer": "Developer"}
PAGE = 20  # deployments per list page
_TYPE = "Microsoft.CognitiveServices/accounts/deployments"
_SHARE = 0.5  # of job_seconds, to provision a deployment
_LOCATION = "emulator"


def _rid(sub: str, rg: str, account: str, name: str = "") -> str:
    base = (f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/"
            f"accounts/{account}/deployments")
    return f"{base}/{name}" if name else base


def state(ctx: Ctx, rec: DeploymentRec) -> str:
    if ctx.now >= rec.changed_at + rec.duration:
        return "Succeeded"
    return "Updating" if rec.updating else "Creating"


def deployed_model(ctx: Ctx, rec: DeploymentRec) -> str:
    """The model id a deployment serves: a fine-tuned id, or a base's dated snapshot."""
    if rec.model_name in ctx.store.models or parse_fine_tuned(rec.model_name):
        return rec.model_name
    if rec.model_version and catalog.load().model(f"{rec.model_name}-{rec.model_version}"):
        return f"{rec.model_name}-{rec.model_version}"
    return rec.model_name


def find(ctx: Ctx, name: str) -> DeploymentRec | None:
    """The provisioned deployment the data plane knows as ``name`` (any account)."""
    for rec in ctx.store.deployments.values():
        if rec.name.lower() == name.lower() and state(ctx, rec) == "Succeeded":
            return rec
    return None


def _json(ctx: Ctx, rec: DeploymentRec) -> dict[str, Any]:
    return {
        "id": rec.id,
        "type": _TYPE,
        "name": rec.name,
        "sku": {"name": rec.sku_name, "capacity": rec.sku_capacity},
        "properties": {
            "model": {"format": rec.model_format, "name": rec.model_name,
                      "version": rec.model_version},
            "provisioningState": state(ctx, rec),
            "versionUpgradeOption": "NoAutoUpgrade",
        },
    }


def _not_found(name: str) -> AzureError:
    return AzureError(404, "DeploymentNotFound", f"The Deployment '{name}' does not exist.")


def _bad(code: str, message: str) -> AzureError:
    return AzureError(400, code, message)


def _parse(ctx: Ctx, request: Request) -> tuple[str, str, str, str, int]:
    """(format, model name, version, sku name, capacity) of a PUT body, checked."""
    body = parse_json(request.get_data() or b"null")
    props = body.get("properties") if isinstance(body, dict) else None
    model = props.get("model") if isinstance(props, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise _bad("InvalidResourceProperties", "The deployment's properties.model is required.")
    fmt, name = str(model.get("format") or "OpenAI"), model["name"]
    version = str(model.get("version") or "")
    sku = body.get("sku") if isinstance(body.get("sku"), dict) else {}
    sku_name, capacity = str(sku.get("name") or "Standard"), sku.get("capacity", 1)
    if fmt != "OpenAI" or not _deployable(ctx, name, version):
        raise _bad("DeploymentModelNotSupported", f"The model 'Format:{fmt},Name:{name},"
                   f"Version:{version}' of account deployment is not supported.")
    if sku_name.lower() not in SKUS:
        raise _bad("InvalidResourceProperties", f"The specified SKU '{sku_name}' for model "
                   f"'{name} {version}' is not supported in this region '{_LOCATION}'.")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise _bad("InvalidResourceProperties", "The sku capacity must be a positive integer.")
    return fmt, name, version, SKUS[sku_name.lower()], capacity


def _deployable(ctx: Ctx, name: str, version: str) -> bool:
    if name in ctx.store.models:  # a fine-tuned model exists once its job has succeeded
        return True
    if parse_fine_tuned(name):
        return False
    info = catalog.load().model(f"{name}-{version}")
    return info is not None and info.id == f"{name}-{version}"


def _operation_url(request: Request, sub: str, operation: str) -> str:
    version = request.args.get("api-version", "")
    return (f"{request.host_url.rstrip('/')}/subscriptions/{sub}/providers/"
            f"Microsoft.CognitiveServices/locations/{_LOCATION}/operationResults/{operation}"
            f"?api-version={version}")


def put(ctx: Ctx, request: Request, sub: str, rg: str, account: str, name: str) -> Reply:
    fmt, model, version, sku, capacity = _parse(ctx, request)
    rid = _rid(sub, rg, account, name)
    old = ctx.store.deployments.get(rid.lower())
    rec = DeploymentRec(
        key=rid.lower(), id=old.id if old else rid, name=old.name if old else name,
        model_format=fmt, model_name=model, model_version=version, sku_name=sku,
        sku_capacity=capacity, created_at=old.created_at if old else ctx.now,
        changed_at=ctx.now, duration=ctx.job_seconds * _SHARE,
        operation=ctx.store.new_hex(), updating=old is not None,
    )
    if old and (old.model_name, old.model_version) == (model, version):
        rec = replace(rec, duration=0.0)  # a change of sku alone is applied at once
    ctx.store.put_deployment(rec)
    headers = {"Azure-AsyncOperation": _operation_url(request, sub, rec.operation)}
    return Reply(_json(ctx, rec), 200 if old else 201, headers=headers)


def get(ctx: Ctx, request: Request, sub: str, rg: str, account: str, name: str) -> Reply:
    rec = ctx.store.deployments.get(_rid(sub, rg, account, name).lower())
    if rec is None:
        raise _not_found(name)
    return Reply(_json(ctx, rec))


def delete(ctx: Ctx, request: Request, sub: str, rg: str, account: str, name: str) -> Reply:
    key = _rid(sub, rg, account, name).lower()
    if key not in ctx.store.deployments:
        return Reply(None, 204)
    ctx.store.drop_deployment(key)
    return Reply(None, 200)


def list_deployments(ctx: Ctx, request: Request, sub: str, rg: str, account: str) -> Reply:
    prefix = _rid(sub, rg, account).lower() + "/"
    found = [r for k, r in ctx.store.deployments.items() if k.startswith(prefix)]
    raw = request.args.get("$skipToken", "0")
    start = int(raw) if raw.isdigit() else 0
    body: dict[str, Any] = {"value": [_json(ctx, r) for r in found[start : start + PAGE]]}
    if start + PAGE < len(found):
        version = request.args.get("api-version", "")
        body["nextLink"] = (f"{request.base_url}?api-version={version}"
                            f"&$skipToken={start + PAGE}")
    return Reply(body)


def operation(ctx: Ctx, request: Request, sub: str, location: str, operation: str) -> Reply:
    rec = next((r for r in ctx.store.deployments.values() if r.operation == operation), None)
    if rec is None:
        raise AzureError(404, "ResourceNotFound", f"The operation '{operation}' was not found.")
    done = state(ctx, rec) == "Succeeded"
    body: dict[str, Any] = {
        "id": request.path, "name": operation, "status": "Succeeded" if done else "InProgress",
        "startTime": _iso(rec.changed_at),
    }
    if done:
        body["endTime"] = _iso(rec.changed_at + rec.duration)
    return Reply(body)


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def refuse_deployed_delete(ctx: Ctx, model: str) -> None:
    """Azure keeps a fine-tuned model while a deployment serves it."""
    if any(r.model_name == model for r in ctx.store.deployments.values()):
        raise AzureError(409, "Conflict", f"The model '{model}' cannot be deleted because it is "
                         "deployed. Delete its deployments first.")


def v1_completion(ctx: Ctx, request: Request) -> Reply:
    """Chat Completions on the v1 surface: the body's model names a deployment, and only a
    provisioned deployment answers (Azure's v1 API: "model" is the deployment name)."""
    body = chat.parse(request)
    name = body.get("model")
    rec = find(ctx, name) if isinstance(name, str) else None
    model = chat.resolve(ctx, deployed_model(ctx, rec)) if rec is not None else None
    if rec is None or model is None:
        raise AzureError(404, "DeploymentNotFound", NO_DEPLOYMENT)
    retirement.check_serving(ctx, rec.name, model.id)
    return chat.complete(ctx, body, model)
