"""Nebius Token Factory's dialect (``--flavor nebius``): OpenAI's paths under ``/v1`` as the
official ``openai`` SDK sends them with ``base_url=<emulator>/v1/``, with Nebius' differences.

Followed: the ``openai`` Python SDK 2.x/1.x resource classes (installed: see ``openai.__version__``;
tested with 2.x) as the client; Nebius' API reference at docs.tokenfactory.nebius.com (formerly
docs.studio.nebius.com): "Create a fine-tuning job", "Get fine-tuning job info", "List
fine-tuning jobs", "List fine-tuning checkpoints", "Get fine-tuning checkpoint" (OpenAPI
``20260506-297d05704``), and the guides "How to fine-tune your custom model" and "Datasets".

What the dialect does, from those pages:

- Files, jobs, events and checkpoints at OpenAI's paths, Bearer auth; the job statuses
  ``validating_files, queued, running, succeeded, failed, cancelled`` (no pause/resume routes).
- Hyperparameters ``batch_size, learning_rate`` (absolute, no multiplier), ``n_epochs,
  warmup_ratio, weight_decay, packing, max_grad_norm, context_length, lora, lora_r, lora_alpha,
  lora_dropout``, at the top level or under ``method.supervised.hyperparameters``; jobs show all
  of them, with the reference's example values as defaults. The create body also takes ``tags``,
  ``from_checkpoint`` ({repo, type: hf, revision, token}), ``integrations``, ``seed``,
  ``suffix`` (at most 64), ``extra_body``. Jobs show ``suffix``, ``trained_steps``,
  ``total_steps``, ``estimated_finish``, ``organization_id: ""``, and no ``metadata``.
- Errors: the service is FastAPI (its OpenAPI answers ``422 HTTPValidationError``): a body
  that fails validation is 422 ``{"detail": [{type, loc, msg, input}]}``; other errors are
  ``{"detail": "<message>"}``.

Not confirmed, the emulator's own choices: that unknown create fields (``metadata``,
``learning_rate_multiplier``) are refused (422 ``extra_forbidden``) rather than ignored; the
numeric ranges (``nebius_jobs.HYPERPARAMETERS``) and which bases allow full fine-tuning
(``nebius_jobs.BASES``; the docs name Meta-Llama-3.1-8B-Instruct for LoRA and full, and
Llama-3.3-70B-Instruct for LoRA); the words and statuses of 400/401/404 answers; the id
prefixes (OpenAI's); that a listing ignores a ``metadata[...]`` query (FastAPI ignores unknown
query parameters); that job events are OpenAI's objects; the DELETE of a model; and the id of
a trained model. The job schema has no ``fine_tuned_model`` (a checkpoint is deployed to be
served); the emulator shows one on a succeeded job, ``<base>-LoRa:<suffix>-<key>``, and serves
chat completions under it, so that evals can run.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from ftops.emulator import chat, files, jobs, nebius_jobs
from ftops.emulator.common import ApiError, Ctx, Handler, Reply, http_message
from ftops.emulator.nebius_jobs import BASES, NebiusError

__all__ = ["ROUTES", "NebiusError", "admit", "http_error", "unknown_url"]
_BASE_CREATED = 1_735_689_600  # 2025-01-01, for the base models' ``created``


def admit(request: Request) -> None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise NebiusError(401, "Not authenticated")


def unknown_url(request: Request) -> ApiError:
    return NebiusError(404, "Not Found")


def http_error(exc: HTTPException) -> ApiError:
    return NebiusError(exc.code or 400, http_message(exc))


def _shaped(handler: Handler) -> Handler:
    """A shared handler whose errors are answered in Nebius' shape, same status and words."""

    def serve(ctx: Ctx, request: Request, **args: str) -> Reply:
        try:
            return handler(ctx, request, **args)
        except NebiusError:
            raise
        except ApiError as exc:
            raise NebiusError(exc.status, exc.message) from None

    serve.__name__ = handler.__name__
    return serve


def list_jobs(ctx: Ctx, request: Request) -> Reply:
    """OpenAI's listing, a ``metadata`` query ignored as FastAPI ignores unknown parameters."""
    kept = [(k, v) for k, v in request.args.items(multi=True) if not k.startswith("metadata")]
    plain = Request({**request.environ, "QUERY_STRING": urlencode(kept)})
    return jobs.list_jobs(ctx, plain)


# models and chat -------------------------------------------------------------------------------
def _models(ctx: Ctx) -> list[dict[str, object]]:
    bases = [{"id": b, "object": "model", "created": _BASE_CREATED, "owned_by": "system"}
             for b in BASES]
    tuned = [{"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
             for m in ctx.store.models.values()]
    return bases + tuned


def list_models(ctx: Ctx, request: Request) -> Reply:
    return Reply({"object": "list", "data": _models(ctx)})


def retrieve_model(ctx: Ctx, request: Request, model: str) -> Reply:
    found = next((m for m in _models(ctx) if m["id"] == model), None)
    if found is None:
        raise NebiusError(404, f"Model {model} not found")
    return Reply(found)


def delete_model(ctx: Ctx, request: Request, model: str) -> Reply:
    if model in BASES:
        raise NebiusError(403, f"Model {model} is a base model and cannot be deleted")
    if model not in ctx.store.models:
        raise NebiusError(404, f"Model {model} not found")
    ctx.store.drop_model(model)
    return Reply({"id": model, "object": "model", "deleted": True})


def _chat_model(ctx: Ctx, model: str) -> chat.ChatModel | None:
    if model in BASES:
        return chat.ChatModel(model, "o200k_base", ())
    if model not in ctx.store.models:
        return None
    producer = next((j for j in ctx.store.jobs.values() if j.fine_tuned_model == model), None)
    blobs = () if producer is None else (ctx.store.blob_path(chat.training_blob(producer.id)),)
    return chat.ChatModel(model, "o200k_base", blobs)


def create_completion(ctx: Ctx, request: Request) -> Reply:
    body = chat.parse(request)
    requested = body.get("model")
    model = _chat_model(ctx, requested) if isinstance(requested, str) else None
    if model is None:
        raise NebiusError(404, f"The model `{requested}` does not exist.")
    return chat.complete(ctx, body, model)


_Row = tuple[str, str, Callable[..., Reply], bool]
# (method, path, handler, creates): what ``routes.FLAVORS["nebius"]`` serves under /v1.
ROUTES: tuple[_Row, ...] = (
    ("POST", "/files", _shaped(files.create_file), True),
    ("GET", "/files", _shaped(files.list_files), False),
    ("GET", "/files/<file_id>", _shaped(files.retrieve_file), False),
    ("DELETE", "/files/<file_id>", _shaped(files.delete_file), False),
    ("GET", "/files/<file_id>/content", _shaped(files.file_content), False),
    ("POST", "/fine_tuning/jobs", _shaped(nebius_jobs.create_job), True),
    ("GET", "/fine_tuning/jobs", _shaped(nebius_jobs.rendered(list_jobs)), False),
    ("GET", "/fine_tuning/jobs/<job_id>", _shaped(nebius_jobs.rendered(jobs.retrieve_job)), False),
    ("POST", "/fine_tuning/jobs/<job_id>/cancel",
     _shaped(nebius_jobs.rendered(jobs.cancel_job)), False),
    ("GET", "/fine_tuning/jobs/<job_id>/events", _shaped(jobs.list_events), False),
    ("GET", "/fine_tuning/jobs/<job_id>/checkpoints", _shaped(jobs.list_checkpoints), False),
    ("GET", "/models", list_models, False),
    ("GET", "/models/<path:model>", retrieve_model, False),
    ("DELETE", "/models/<path:model>", delete_model, False),
    ("POST", "/chat/completions", _shaped(create_completion), False),
)
