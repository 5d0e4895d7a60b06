"""Azure OpenAI's own rules for fine-tuning jobs, on top of OpenAI's (``jobspec``).

They apply on the v1 surface (``/openai/v1/...``) always, and on the api-version surface
(``/openai/...?api-version=``) with ``Emulator(azure_rules=True)``, as ``ftops emulator`` and
``--emulator`` run it; an in-process ``Emulator()`` keeps that surface's earlier, OpenAI-like
behaviour for the tests written against it. A job created under the
rules is rendered the Azure way on every surface (``render``).

Sources, and what could not be confirmed:

- ``trainingType`` is required in the create body; without it Azure answers 400
  ``{"error": {"code": "invalidPayload", "message": "The specified base model does not support
  fine-tuning."}}``: LiteLLM PR BerriAI/litellm#24687 (March 2026, "Azure requires this parameter;
  omitting it yields a misleading ... error") and a project log on GitHub quoting
  ``invalidPayload: The specified base model does not support fine-tuning.`` fixed by sending
  ``trainingType=GlobalStandard``. Values: ``Standard``, ``GlobalStandard``, ``Developer``,
  compared case-insensitively (not confirmed: Microsoft's samples spell them as here); LiteLLM
  sends the integer ``1``, which its E2E run says Azure took, so integers 1-3 are accepted too
  (their meaning is not documented; 1 is kept as ``Standard``). Whether the job echoes
  ``trainingType`` back is not documented: it is not echoed.
- Statuses: Azure reports ``pending`` where OpenAI says ``validating_files`` or ``queued``, and
  ``organization_id: null``, ``result_files: null`` until there are results (LiteLLM PR above:
  "Azure returns status: pending, organization_id: null, result_files: null"). The openai SDK
  parses them unless ``_strict_response_validation`` is on.
- Bases must be dated snapshots (``gpt-4.1-2025-04-14``): Microsoft's samples name them so and
  an undated name gets the same ``invalidPayload`` answer (azure-docs issue #116776 shows that
  message for a model name the service does not fine-tune); the exact answer to an alias is not
  confirmed.
- ``suffix``: "up to 40 characters" of letters, digits, ``-`` and ``_`` (Azure's fine-tuning
  REST reference); the error's wording is the emulator's own, under ``invalidPayload``.
- Ids: ``ftjob-<32 hex>``, and the model ``<base>.ft-<same hex>[-<suffix>]``, as a job on
  GitHub shows (``ftjob-ae456ec3...`` made ``gpt-4.1-2025-04-14.ft-ae456ec3...-aigovtrustdemo``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request

from ftops.emulator.azure import AzureError
from ftops.emulator.common import Ctx, Reply
from ftops.emulator.store import JobRec

TRAINING_TYPES = {"standard": "Standard", "globalstandard": "GlobalStandard",
                  "developer": "Developer"}
_NUMBERED = {1: "Standard", 2: "GlobalStandard", 3: "Developer"}
_NOT_SUPPORTED = "The specified base model does not support fine-tuning."
_SUFFIX = re.compile(r"[A-Za-z0-9_-]{1,40}")
_DATED = re.compile(r".+-\d{4}-\d{2}-\d{2}")
_PENDING = frozenset({"validating_files", "queued"})


def _invalid(message: str) -> AzureError:
    return AzureError(400, "invalidPayload", message)


def training_type(body: dict[str, Any]) -> str:
    """The canonical ``trainingType`` of a create body; raises Azure's 400 when it is missing."""
    value = body.get("trainingType")
    if isinstance(value, int) and not isinstance(value, bool) and value in _NUMBERED:
        return _NUMBERED[value]
    if isinstance(value, str) and value.lower() in TRAINING_TYPES:
        return TRAINING_TYPES[value.lower()]
    if value is None:
        raise _invalid(_NOT_SUPPORTED)
    raise _invalid(f"Invalid value for 'trainingType': {value!r}; expected one of "
                   f"{', '.join(TRAINING_TYPES.values())}.")


def check_base(model: str, fine_tuned: bool) -> None:
    """Azure fine-tunes dated snapshots (or its own fine-tuned models), never an alias."""
    if not fine_tuned and not _DATED.fullmatch(model):
        raise _invalid(_NOT_SUPPORTED)


def check_suffix(suffix: str | None) -> None:
    if suffix is not None and not _SUFFIX.fullmatch(suffix):
        raise _invalid("Invalid 'suffix': use at most 40 characters of letters, digits, '-' "
                       "and '_'.")


# rendering -------------------------------------------------------------------------------------
def _job_view(job: JobRec, body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    if out.get("status") in _PENDING:
        out["status"] = "pending"
    out["organization_id"] = None
    out["result_files"] = out.get("result_files") or None
    return out


def render(ctx: Ctx, body: Any) -> Any:
    """A job, or a list of jobs, as Azure shows those created under its rules."""
    if not isinstance(body, dict):
        return body
    if body.get("object") == "fine_tuning.job":
        job = ctx.store.jobs.get(body.get("id", ""))
        return _job_view(job, body) if job is not None and job.training_type else body
    if body.get("object") == "list" and isinstance(body.get("data"), list):
        return {**body, "data": [render(ctx, item) for item in body["data"]]}
    return body


def rendered(handler: Callable[..., Reply]) -> Callable[..., Reply]:
    """``handler`` with its jobs rendered by ``render``."""

    def serve(ctx: Ctx, request: Request, **args: str) -> Reply:
        reply = handler(ctx, request, **args)
        return Reply(render(ctx, reply.body), reply.status, reply.content_type)

    serve.__name__ = handler.__name__
    return serve
