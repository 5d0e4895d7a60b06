"""Together AI's dialect: ``/v1/files`` uploaded through a signed URL, ``/v1/fine-tunes`` jobs
(``together_jobs``), and ``/v1/chat/completions`` for the models they make, as the official SDK
``together`` 3.1.1 (PyPI, Stainless-generated) sends them. ``Emulator(flavor="together").url`` is
the client's ``base_url`` (the SDK's paths carry ``/v1`` themselves).

Followed: the SDK's own source, ``together/lib/resources/files.py`` (``UploadManager``),
``together/resources/fine_tuning.py`` with ``together/lib/resources/fine_tuning.py`` (what
``create`` sends, after ``model_limits`` and ``estimate_price``), the response types in
``together/types/`` and ``together/lib/types/fine_tuning.py``; and Together's docs pages
"Fine-tuning" / "Files" (docs.together.ai), as the search tool holds them.

The upload, as ``UploadManager._upload_single_file`` performs it:

1. ``POST /v1/files`` with the form fields ``purpose``, ``file_name``, ``file_type`` and
   ``checksum`` (the file's sha256; the SDK forces ``multipart/form-data`` and redirects off).
   The service answers ``302`` with ``Location`` (a signed storage URL) and
   ``X-Together-File-Id``; or ``409`` with ``{"file_id"}`` when a file of that checksum and
   purpose exists, which the SDK turns into the existing file (``FileAlreadyExistsError``).
2. ``PUT`` of the bytes to that URL, without the API key (a presigned URL): ``200``.
3. ``POST /v1/files/{id}/preprocess``: the ``FileResponse``.

Could not be confirmed, and chosen here: that the 409 answer carries ``x-should-retry: false``
(the SDK would otherwise retry a 409 twice before seeing it; the result is the same); that the
checksum is compared with the bytes (here: a mismatch is a 400 at preprocess); the storage
service's own error bodies (here: Together's JSON shape); a bad JSONL file is refused at
preprocess (the SDK checks files client-side first, ``check=True``). Files larger than the
emulator's 64 MiB body limit (and so the SDK's multipart path, above 5 GB) are not emulated.
Error bodies are OpenAI's shape ``{"error": {message, type, param, code}}``, as Together's
OpenAI-compatible API answers; a missing or malformed key is 401 ``invalid_api_key``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from ftops.emulator import chat, datafile
from ftops.emulator.common import ApiError, Ctx, Reply, http_error, invalid, json_body, required
from ftops.emulator.files import live_file
from ftops.emulator.store import FileRec, Store, UploadRec, open_blob
from ftops.emulator.together_jobs import BASES
from ftops.emulator.together_jobs import ROUTES as JOB_ROUTES

if TYPE_CHECKING:
    from ftops.emulator.routes import Flavour

PURPOSES = ("fine-tune", "calibration", "eval", "batch-api")  # together.types.FilePurpose
FILE_TYPES = ("jsonl", "parquet", "csv")  # together.types.FileType
STORAGE = "/storage"
_FORM = frozenset({"purpose", "file_name", "file_type", "checksum"})
_UPLOAD_TTL = 3600
_NO_KEY = ("Invalid API key provided. You can find your API key at "
           "https://api.together.xyz/settings/api-keys.")


def uuid_id(ctx: Ctx, prefix: str) -> str:
    """Together's ids are a prefix and a UUID (``file-…``, ``ft-…``), from the seeded stream."""
    return f"{prefix}{uuid.UUID(hex=ctx.store.new_hex())}"


# admission -------------------------------------------------------------------------------------
def admit(request: Request) -> None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, _NO_KEY, code="invalid_api_key")


def admit_storage(request: Request) -> None:
    """A presigned URL carries its signature, never the API key."""
    if not request.args.get("signature"):
        raise ApiError(403, "Request has expired or its signature does not match.",
                       code="SignatureDoesNotMatch")


def unknown_url(request: Request) -> ApiError:
    return ApiError(404, f"Not found: {request.method} {request.path}", code="not_found")


def request_error(exc: HTTPException) -> ApiError:
    return http_error(exc)


# files -----------------------------------------------------------------------------------------
def file_json(rec: FileRec) -> dict[str, Any]:
    kind = rec.filename.rsplit(".", 1)[-1].lower()
    return {
        "id": rec.id,
        "object": "file",
        "bytes": rec.bytes,
        "created_at": rec.created_at,
        "filename": rec.filename,
        "FileType": kind if kind in FILE_TYPES else "jsonl",
        "purpose": rec.purpose,
        "processing_status": "COMPLETED",
    }


def _file(ctx: Ctx, file_id: str) -> FileRec:
    rec = live_file(ctx, file_id)
    if rec is None or rec.purpose not in PURPOSES:
        raise ApiError(404, f"File {file_id} not found", param="id", code="file_not_found")
    return rec


def _checksum_of(ctx: Ctx, file_id: str) -> str | None:
    return next((u.mime_type for u in ctx.store.uploads.values()
                 if u.file_id == file_id and u.status == "completed"), None)


def create_file(ctx: Ctx, request: Request) -> Reply:
    if request.mimetype != "multipart/form-data":
        raise invalid("Expected a multipart/form-data body.")
    unknown = sorted((set(request.form) | set(request.files)) - _FORM)
    if unknown:
        raise invalid(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    values = {key: request.form.get(key, "") for key in _FORM}
    for key in ("purpose", "file_name", "file_type", "checksum"):
        if not values[key]:
            raise invalid(f"Missing required parameter: '{key}'.", key,
                          "missing_required_parameter")
    if values["purpose"] not in PURPOSES:
        raise invalid(f"Invalid purpose '{values['purpose']}'.", "purpose", "invalid_value")
    if values["file_type"] not in FILE_TYPES:
        raise invalid(f"Invalid file_type '{values['file_type']}'.", "file_type", "invalid_value")
    for up in ctx.store.uploads.values():
        same = up.mime_type == values["checksum"] and up.purpose == values["purpose"]
        if same and up.status == "completed" and up.file_id and live_file(ctx, up.file_id):
            return Reply({"message": "File already exists", "file_id": up.file_id}, 409,
                         headers={"x-should-retry": "false"})
    file_id = uuid_id(ctx, "file-")
    signature = hashlib.sha256(f"{file_id}:{ctx.now}".encode()).hexdigest()[:32]
    ctx.store.put_upload(UploadRec(
        id=signature, created_at=int(ctx.now), expires_at=int(ctx.now) + _UPLOAD_TTL,
        filename=values["file_name"], bytes=0, mime_type=values["checksum"],
        purpose=values["purpose"], status="pending", file_id=file_id))
    location = f"{request.host_url.rstrip('/')}{STORAGE}/{file_id}?signature={signature}"
    return Reply({}, 302, headers={"Location": location, "X-Together-File-Id": file_id})


def _pending(ctx: Ctx, file_id: str, signature: str | None) -> UploadRec:
    up = ctx.store.uploads.get(signature or "")
    if up is None or up.file_id != file_id or up.expires_at <= ctx.now:
        raise ApiError(403, "Request has expired or its signature does not match.",
                       code="SignatureDoesNotMatch")
    return up


def put_object(ctx: Ctx, request: Request, file_id: str) -> Reply:
    up = _pending(ctx, file_id, request.args.get("signature"))
    data = request.get_data()
    ctx.store.write_blob(file_id, iter([data]))
    ctx.store.put_upload(replace(up, bytes=len(data)))
    etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return Reply({}, 200, headers={"ETag": f'"{etag}"'})


def preprocess(ctx: Ctx, request: Request, file_id: str) -> Reply:
    """Makes an uploaded object a file, once its bytes are there and hash to its checksum."""
    up = next((u for u in ctx.store.uploads.values() if u.file_id == file_id), None)
    if up is not None and up.status == "completed" and live_file(ctx, file_id):
        return Reply(file_json(_file(ctx, file_id)))
    if up is None or up.status != "pending" or not ctx.store.blob_path(file_id).exists():
        raise ApiError(404, f"File {file_id} not found", param="id", code="file_not_found")
    digest = hashlib.sha256()
    with open_blob(ctx.store.blob_path(file_id)) as lines:
        for line in lines:
            digest.update(line)
    if digest.hexdigest() != up.mime_type:
        raise invalid(f"File {file_id}: the uploaded bytes do not match the checksum sent.",
                      "checksum", "checksum_mismatch")
    if up.filename.lower().endswith(".jsonl"):
        with open_blob(ctx.store.blob_path(file_id)) as lines:
            problem = datafile.jsonl_problem(lines)
        if problem:
            raise invalid(f"Invalid file format: {problem}", "file", "invalid_file_format")
    rec = FileRec(file_id, ctx.store.take_seq(), up.bytes, int(ctx.now), up.filename, up.purpose)
    ctx.store.put_file(rec)
    ctx.store.put_upload(replace(up, status="completed"))
    return Reply(file_json(rec))


def list_files(ctx: Ctx, request: Request) -> Reply:
    found = [file_json(r) for r in ctx.store.files.values()
             if r.purpose in PURPOSES and live_file(ctx, r.id)]
    return Reply({"object": "list", "data": found})


def retrieve_file(ctx: Ctx, request: Request, file_id: str) -> Reply:
    return Reply(file_json(_file(ctx, file_id)))


def delete_file(ctx: Ctx, request: Request, file_id: str) -> Reply:
    _file(ctx, file_id)
    ctx.store.drop_file(file_id)
    return Reply({"id": file_id, "deleted": True})


def file_content(ctx: Ctx, request: Request, file_id: str) -> Reply:
    _file(ctx, file_id)
    return Reply(open_blob(ctx.store.blob_path(file_id)))


_CHAT_KEYS = (
    "messages", "model", "chat_template_kwargs", "compliance", "context_length_exceeded_behavior",
    "echo", "frequency_penalty", "function_call", "logit_bias", "logprobs", "max_tokens",
    "min_p", "n", "presence_penalty", "reasoning", "reasoning_effort", "repetition_penalty",
    "response_format", "safety_model", "seed", "stop", "temperature", "tool_choice", "tools",
    "top_k", "top_p", "stream",
)  # fmt: skip


# chat ------------------------------------------------------------------------------------------
def _lineage(store: Store, model: str) -> Iterator[Path]:
    job = next((j for j in store.jobs.values() if j.model_name == model), None)
    while job is not None:
        yield store.blob_path(chat.training_blob(job.id))
        job = next((j for j in store.jobs.values()
                    if j.model_name == job.model and j.id != job.id), None)


def create_completion(ctx: Ctx, request: Request) -> Reply:
    body = json_body(request, _CHAT_KEYS)
    model = required(body, "model", str)
    messages = required(body, "messages", list)
    if not messages or not all(isinstance(m, dict) and m.get("role") in
                               ("system", "user", "assistant", "tool") for m in messages):
        raise invalid("Invalid 'messages': a non-empty list of messages with a role.",
                      "messages", "invalid_value")
    if model in ctx.store.models:
        found = chat.ChatModel(model, "o200k_base", tuple(_lineage(ctx.store, model)))
    elif model in BASES:
        found = chat.ChatModel(model, "o200k_base", ())
    else:
        raise ApiError(404, f"Unable to access model {model}. Please visit "
                       "https://api.together.ai/models to view the list of supported models.",
                       param="model", code="model_not_available")
    return chat.complete(ctx, body, found)


# the flavour -----------------------------------------------------------------------------------
def flavour() -> Flavour:
    """The dialect's routing table. ``routes`` builds it while it is itself being imported
    (its classes are defined by then): importing ``routes`` here at the top would be a cycle."""
    from ftops.emulator.routes import Flavour, Route, Surface

    api = (
        Route("POST", "/files", create_file, creates=True),
        Route("GET", "/files", list_files),
        Route("GET", "/files/<file_id>", retrieve_file),
        Route("DELETE", "/files/<file_id>", delete_file),
        Route("GET", "/files/<file_id>/content", file_content),
        Route("POST", "/files/<file_id>/preprocess", preprocess, creates=True),
        *(Route(m, p, h, c) for m, p, h, c in JOB_ROUTES),
        Route("POST", "/chat/completions", create_completion),
    )
    storage = (Route("PUT", "/<file_id>", put_object, creates=True),)
    return Flavour("", (
        Surface(STORAGE, storage, lambda request, _valid: admit_storage(request), unknown_url,
                request_error),
        Surface("/v1", api, lambda request, _valid: admit(request), unknown_url, request_error),
    ))
