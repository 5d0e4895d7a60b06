"""Files and Uploads endpoints."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterable, Iterator
from dataclasses import replace
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request

from ftops.emulator import datafile
from ftops.emulator.common import (
    Ctx,
    Reply,
    invalid,
    json_body,
    not_found,
    query_limit,
    required,
    typed,
)
from ftops.emulator.store import FileRec, PartRec, UploadRec, open_blob

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_PART_BYTES = 64 * 1024 * 1024
MAX_UPLOAD_BYTES = 8 * 1024**3
UPLOAD_TTL = 3600
_EXPIRY_RANGE = (3600, 2_592_000)
_READ = 1 << 20  # bytes per read of an uploaded file: checks stream, they never load a file
# The multipart fields of each endpoint (OpenAPI CreateFileRequest and AddUploadPartRequest, both
# ``additionalProperties: false``); the SDK sends expires_after as bracketed keys
# (``_base_client._serialize_multipartform``, array_format "brackets").
_FILE_FIELDS = frozenset({"file", "purpose", "expires_after[anchor]", "expires_after[seconds]"})
_PART_FIELDS = frozenset({"data"})
# Purposes whose files the API never hands back: a download answers "Not allowed to download files
# of purpose: user_data" (400, invalid_request_error, param and code null), as reported from the
# live API for user_data and assistants (https://community.openai.com/t/file-uploads-error-why-can-
# t-i-download-files-with-purpose-user-data/1357013; GitHub projects also catch exactly "Not
# allowed to download files of purpose: assistants"). Training files (fine-tune), their results
# (fine-tune-results), batch, vision and evals files stay downloadable: a table in a reply of
# that thread also lists fine-tune and evals as not downloadable, but no error report confirms it,
# and ftops reads back its fine-tune files.
_NO_DOWNLOAD = frozenset({"assistants", "user_data"})


def file_json(rec: FileRec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "file",
        "id": rec.id,
        "purpose": rec.purpose,
        "filename": rec.filename,
        "bytes": rec.bytes,
        "created_at": rec.created_at,
        "status": "processed",
    }
    if rec.expires_at is not None:
        body["expires_at"] = rec.expires_at
    return body


def live_file(ctx: Ctx, file_id: str) -> FileRec | None:
    rec = ctx.store.files.get(file_id)
    if rec is None or (rec.expires_at is not None and rec.expires_at <= ctx.now):
        return None
    return rec


def add_file(ctx: Ctx, *, chunks: Iterator[bytes], filename: str, purpose: str) -> FileRec:
    """Stores a new file; also used for completed uploads and fine-tuning result files."""
    file_id = ctx.store.new_id("file-", 22)
    size = ctx.store.write_blob(file_id, chunks)
    rec = FileRec(file_id, ctx.store.take_seq(), size, int(ctx.now), filename, purpose)
    ctx.store.put_file(rec)
    return rec


def _purpose(value: object) -> str:
    if value is None or value == "":
        raise invalid(
            "Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter"
        )
    if value not in PURPOSES:
        raise invalid(
            f"Invalid value for 'purpose': {value!r}; expected one of {', '.join(PURPOSES)}.",
            "purpose",
            "invalid_value",
        )
    return str(value)


def _expiry_seconds(anchor: object, seconds: object, param: str) -> int:
    lo, hi = _EXPIRY_RANGE
    try:
        value = int(str(seconds))
    except ValueError:
        value = -1
    if anchor != "created_at" or not lo <= value <= hi:
        raise invalid(
            f"Invalid '{param}': anchor must be 'created_at' and seconds from {lo} to {hi}.", param
        )
    return value


def _known_fields(request: Request, allowed: frozenset[str]) -> None:
    """Refuses a multipart field the endpoint does not know, text or file, as ``json_body`` does a
    JSON key, in the API's words for an unknown parameter (see ``common.json_body``)."""
    unknown = sorted((set(request.form) | set(request.files)) - allowed)
    if unknown:
        raise invalid(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])


def _fine_tune_format(filename: str, parts: Iterable[bytes], param: str | None) -> None:
    """Refuses a fine-tune file that is not named .jsonl or not UTF-8 JSON Lines of objects.

    The name rule and its words are the API's: "The Fine-tuning API only supports `.jsonl` files"
    (OpenAPI createFile), and the live API answers a .txt or .py upload "Invalid file format for
    Fine-Tuning API. Must be .jsonl" (asserted by public integration tests of OpenAI CLIs on
    GitHub). That the content is checked at upload, line by line, is the API's too: in 2023 it
    answered "Expected file to have JSONL format, where every line is a JSON dictionary. Line 1 is
    not a dictionary" (openai/openai-python#426, OkGoDoIt/OpenAI-API-dotnet#59). The exact words
    for content are the emulator's best knowledge: the API's current wording is not documented.
    The case of the suffix is not held against a file (no source either way).
    """
    if not filename.lower().endswith(".jsonl"):
        raise invalid("Invalid file format for Fine-Tuning API. Must be .jsonl", param)
    problem = datafile.jsonl_problem(parts)
    if problem:
        raise invalid(f"Invalid file format for Fine-Tuning API: {problem}", param)


def _form_expiry(form: MultiDict[str, str]) -> int | None:
    anchor, seconds = form.get("expires_after[anchor]"), form.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    return _expiry_seconds(anchor, seconds, "expires_after")


# files -----------------------------------------------------------------------------------------
def create_file(ctx: Ctx, request: Request) -> Reply:
    if request.mimetype != "multipart/form-data":
        raise invalid("Expected a multipart/form-data body with fields 'purpose' and 'file'.")
    purpose = _purpose(request.form.get("purpose"))
    upload = request.files.get("file")
    if upload is None:
        raise invalid("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    _known_fields(request, _FILE_FIELDS)
    expiry = _form_expiry(request.form)
    filename = upload.filename or "upload"
    if purpose == "fine-tune":
        # Checked before anything is stored or an id drawn: a refused upload changes nothing.
        _fine_tune_format(filename, iter(lambda: upload.stream.read(_READ), b""), "file")
        upload.stream.seek(0)
    chunks = iter(lambda: upload.stream.read(_READ), b"")
    rec = add_file(ctx, chunks=chunks, filename=filename, purpose=purpose)
    if expiry is not None:
        rec = replace(rec, expires_at=rec.created_at + expiry)
        ctx.store.put_file(rec)
    return Reply(file_json(rec))


def list_files(ctx: Ctx, request: Request) -> Reply:
    purpose = request.args.get("purpose")
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid("Invalid 'order': expected 'asc' or 'desc'.", "order")
    limit = query_limit(request, 10_000, 10_000)
    after = request.args.get("after")
    cursor = ctx.store.file_seq.get(after) if after else None
    if after and cursor is None:
        raise invalid(f"Invalid 'after': no file with id '{after}'.", "after")
    desc = order == "desc"
    chunk: list[FileRec] = []
    # Files are kept in creation order: walk from the right end and stop one past the page.
    for rec in reversed(ctx.store.files.values()) if desc else ctx.store.files.values():
        if cursor is not None and (rec.seq >= cursor if desc else rec.seq <= cursor):
            continue
        if purpose is not None and rec.purpose != purpose:
            continue
        if rec.expires_at is not None and rec.expires_at <= ctx.now:
            continue
        chunk.append(rec)
        if len(chunk) > limit:
            break
    more = len(chunk) > limit
    chunk = chunk[:limit]
    return Reply(
        {
            "object": "list",
            "data": [file_json(r) for r in chunk],
            # The schema requires strings here, so an empty page has empty ids.
            "first_id": chunk[0].id if chunk else "",
            "last_id": chunk[-1].id if chunk else "",
            "has_more": more,
        }
    )


def _file(ctx: Ctx, file_id: str) -> FileRec:
    rec = live_file(ctx, file_id)
    if rec is None:
        raise not_found("File", file_id, "file_id")
    return rec


def retrieve_file(ctx: Ctx, request: Request, file_id: str) -> Reply:
    return Reply(file_json(_file(ctx, file_id)))


def delete_file(ctx: Ctx, request: Request, file_id: str) -> Reply:
    ctx.store.drop_file(_file(ctx, file_id).id)
    return Reply({"object": "file", "id": file_id, "deleted": True})


def file_content(ctx: Ctx, request: Request, file_id: str) -> Reply:
    rec = _file(ctx, file_id)
    if rec.purpose in _NO_DOWNLOAD:
        raise invalid(f"Not allowed to download files of purpose: {rec.purpose}")
    # Opened under the server lock: a concurrent delete cannot pull the bytes away mid-stream.
    return Reply(open_blob(ctx.store.blob_path(rec.id)))


# uploads ---------------------------------------------------------------------------------------
def upload_json(ctx: Ctx, rec: UploadRec) -> dict[str, Any]:
    status = rec.status
    if status == "pending" and rec.expires_at <= ctx.now:
        status = "expired"
    done = live_file(ctx, rec.file_id) if rec.file_id else None
    return {
        "object": "upload",
        "id": rec.id,
        "purpose": rec.purpose,
        "filename": rec.filename,
        "bytes": rec.bytes,
        "created_at": rec.created_at,
        "expires_at": rec.expires_at,
        "status": status,
        "file": file_json(done) if done else None,
    }


def _pending(ctx: Ctx, upload_id: str) -> UploadRec:
    rec = ctx.store.uploads.get(upload_id)
    if rec is None:
        raise not_found("Upload", upload_id, "upload_id")
    status = upload_json(ctx, rec)["status"]
    if status != "pending":
        raise invalid(f"Upload {upload_id} is {status}; only a pending upload can change.")
    return rec


def create_upload(ctx: Ctx, request: Request) -> Reply:
    body = json_body(request, ("filename", "purpose", "bytes", "mime_type", "expires_after"))
    filename = required(body, "filename", str)
    size = required(body, "bytes", int)
    mime_type = required(body, "mime_type", str)
    purpose = _purpose(body.get("purpose"))
    if not 0 <= size <= MAX_UPLOAD_BYTES:
        raise invalid(f"'bytes' must be from 0 to {MAX_UPLOAD_BYTES}.", "bytes")
    expiry = typed(body, "expires_after", dict)
    created = int(ctx.now)
    rec = UploadRec(
        id=ctx.store.new_id("upload_"),
        created_at=created,
        expires_at=created + UPLOAD_TTL,
        filename=filename,
        bytes=size,
        mime_type=mime_type,
        purpose=purpose,
        status="pending",
        file_expires_after=(
            _expiry_seconds(expiry.get("anchor"), expiry.get("seconds"), "expires_after")
            if expiry is not None
            else None
        ),
    )
    ctx.store.put_upload(rec)
    return Reply(upload_json(ctx, rec))


def add_part(ctx: Ctx, request: Request, upload_id: str) -> Reply:
    upload = _pending(ctx, upload_id)
    data = request.files.get("data")
    if data is None:
        raise invalid("Missing required parameter: 'data'.", "data", "missing_required_parameter")
    _known_fields(request, _PART_FIELDS)
    size = data.stream.seek(0, os.SEEK_END)
    if size > MAX_PART_BYTES:
        raise invalid(
            f"A part may hold at most {MAX_PART_BYTES} bytes; this one has {size}.", "data"
        )
    # The bytes were parsed into a spool file before the server lock (Store.spool): storing the
    # part is a rename, so parts sent at once are not stored one after another.
    part_id = ctx.store.new_id("part_")
    ctx.store.adopt_blob(part_id, data.stream)
    part = PartRec(part_id, upload_id, int(ctx.now), size)
    ctx.store.put_part(part)
    ctx.store.put_upload(replace(upload, parts=(*upload.parts, part_id)))
    return Reply(
        {
            "object": "upload.part",
            "id": part_id,
            "created_at": part.created_at,
            "upload_id": upload_id,
        }
    )


def complete_upload(ctx: Ctx, request: Request, upload_id: str) -> Reply:
    upload = _pending(ctx, upload_id)
    body = json_body(request, ("part_ids", "md5"))
    part_ids = required(body, "part_ids", list)
    md5 = typed(body, "md5", str)
    if (
        not all(isinstance(p, str) for p in part_ids)
        or len(set(part_ids)) != len(part_ids)
        or any(p not in upload.parts for p in part_ids)
    ):
        raise invalid(f"'part_ids' must list distinct parts of upload {upload_id}.", "part_ids")
    total = sum(ctx.store.parts[p].bytes for p in part_ids)
    if total != upload.bytes:
        raise invalid(
            f"The parts hold {total} bytes but the upload was created with bytes={upload.bytes}.",
            "part_ids",
        )
    if md5 is not None and md5.lower() != (digest := ctx.store.parts_md5(part_ids)):
        raise invalid(f"The md5 of the parts is {digest}, not {md5}.", "md5")
    if upload.purpose == "fine-tune":
        # The parts in the order given are the file; it is refused as POST /files refuses it,
        # and the upload stays pending, as after any refused complete.
        with contextlib.closing(_read_parts(ctx, part_ids)) as parts:  # closed if cut short
            _fine_tune_format(upload.filename, parts, None)
    file_id = ctx.store.new_id("file-", 22)
    ctx.store.join_parts(file_id, part_ids)
    expires = int(ctx.now) + upload.file_expires_after if upload.file_expires_after else None
    rec = FileRec(
        file_id, ctx.store.take_seq(), total, int(ctx.now), upload.filename, upload.purpose, expires
    )
    ctx.store.put_file(rec)
    for part_id in upload.parts:
        ctx.store.blob_path(part_id).unlink(missing_ok=True)
    done = replace(upload, status="completed", file_id=file_id)
    ctx.store.put_upload(done)
    return Reply(upload_json(ctx, done))


def _read_parts(ctx: Ctx, part_ids: list[str]) -> Generator[bytes, None, None]:
    """The bytes of the parts, one after another, a bounded read at a time."""
    for part_id in part_ids:
        with open_blob(ctx.store.blob_path(part_id)) as part:
            yield from iter(lambda: part.read(_READ), b"")


def cancel_upload(ctx: Ctx, request: Request, upload_id: str) -> Reply:
    done = replace(_pending(ctx, upload_id), status="cancelled")
    ctx.store.put_upload(done)
    for part_id in done.parts:
        ctx.store.blob_path(part_id).unlink(missing_ok=True)
    return Reply(upload_json(ctx, done))
