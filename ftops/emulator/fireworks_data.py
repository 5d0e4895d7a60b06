"""Fireworks datasets, models and chat completions (see ``fireworks`` for sources and limits).

A dataset is a ``FileRec`` keyed ``<account>.<dataset id>``: its ``purpose`` is
``fireworks/<format>`` (so no other dialect's file is ever listed as a dataset), its
``filename`` the display name, its ``expires_at`` the time its file was uploaded (None while the
dataset is ``UPLOADING``; the dialect never expires a dataset). A fine-tuned
model is a ``ModelRec`` named ``accounts/<account>/models/<id>`` (``JobRec.model_name``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from werkzeug.wrappers import Request

from ftops.emulator import chat, datafile
from ftops.emulator.common import Ctx, Reply, parse_json
from ftops.emulator.fireworks_common import (
    FireworksError,
    InferenceError,
    account_of,
    check_id,
    invalid,
    json_body,
    key,
    not_found,
    page,
    rfc3339,
    split_key,
    typed,
)
from ftops.emulator.store import FileRec, JobRec, ModelRec

PREFIX = "fireworks/"
FORMATS = ("CHAT", "COMPLETION", "RL")
MAX_UPLOAD = 150 * 1024 * 1024  # ":upload handles file sizes up to 150Mb" (the SDK's docstring)
_READ = 1 << 20
_DATASET_FIELDS = ("displayName", "format", "userUploaded", "exampleCount", "evalProtocol",
                   "evaluationResult", "externalUrl", "sourceJobName", "splitted", "transformed")
_UNSUPPORTED = ("evalProtocol", "evaluationResult", "externalUrl", "sourceJobName", "splitted",
                "transformed")
# Fine-tunable bases the emulator serves (``accounts/fireworks/models/<id>``), with their
# context length; ids as Fireworks' model library spells them.
BASES: dict[str, int] = {
    "llama-v3p1-8b-instruct": 131072,
    "llama-v3p1-70b-instruct": 131072,
    "llama-v3p2-3b-instruct": 131072,
    "qwen2p5-7b-instruct": 32768,
    "qwen3-8b": 40960,
    "gpt-oss-20b": 131072,
}
BASE_ACCOUNT = "fireworks"
# Fireworks' inference keys (``fireworks.types.chat.CompletionCreateParams``, SDK 1.2.30).
_CHAT_KEYS = (
    "messages", "model", "context_length_exceeded_behavior", "echo", "echo_last",
    "frequency_penalty", "function_call", "functions", "ignore_eos", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "min_p", "mirostat_lr",
    "mirostat_target", "n", "parallel_tool_calls", "perf_metrics_in_response", "prediction",
    "presence_penalty", "prompt_cache_isolation_key", "prompt_cache_key", "prompt_truncate_len",
    "raw_output", "reasoning_effort", "reasoning_history", "repetition_penalty",
    "response_format", "return_token_ids", "safe_tokenization", "seed", "service_tier",
    "speculation", "stop", "stream", "temperature", "thinking", "tool_choice", "tools", "top_k",
    "top_logprobs", "top_p", "typical_p", "user",
)  # fmt: skip


def dataset_name(account: str, dataset_id: str) -> str:
    return f"accounts/{account}/datasets/{dataset_id}"


def is_dataset(rec: FileRec) -> bool:
    return rec.purpose.startswith(PREFIX)


def dataset_json(rec: FileRec) -> dict[str, Any]:
    account, dataset_id = split_key(rec.id)
    ready = rec.expires_at is not None
    return {
        "name": dataset_name(account, dataset_id),
        "displayName": rec.filename,
        "createTime": rfc3339(rec.created_at),
        "updateTime": rfc3339(rec.expires_at or rec.created_at),
        "state": "READY" if ready else "UPLOADING",
        "status": {"code": "OK", "message": ""},
        "format": rec.purpose[len(PREFIX):],
        "userUploaded": {},
        "exampleCount": "0",
        "estimatedTokenCount": "0",
    }


def dataset(ctx: Ctx, account: str, dataset_id: str) -> FileRec:
    rec = ctx.store.files.get(key(account_of(account), dataset_id))
    if rec is None or not is_dataset(rec):
        raise not_found("Dataset", dataset_name(account, dataset_id))
    return rec


# datasets ---------------------------------------------------------------------------------------
def create_dataset(ctx: Ctx, request: Request, account: str) -> Reply:
    account_of(account)
    body = json_body(request, ("dataset", "datasetId", "sourceDatasetId"))
    dataset_id = check_id(body.get("datasetId"), "dataset_id")
    if body.get("sourceDatasetId"):
        raise invalid("source_dataset_id is not implemented by the emulator")
    fields = typed(body, "dataset", dict)
    if fields is None:
        raise invalid("dataset is required")
    unknown = sorted(set(fields) - set(_DATASET_FIELDS))
    if unknown:
        raise invalid(f"proto: unknown field \"{unknown[0]}\"")
    given = sorted(k for k in _UNSUPPORTED if fields.get(k))
    if given:
        raise invalid(f"dataset.{given[0]} is not implemented by the emulator")
    fmt = fields.get("format") or "CHAT"
    if fmt not in FORMATS:
        raise invalid(f"invalid dataset.format {fmt!r}")
    if key(account, dataset_id) in ctx.store.files:
        raise FireworksError("ALREADY_EXISTS",
                             f"Dataset \"{dataset_name(account, dataset_id)}\" already exists")
    display = typed(fields, "displayName", str) or dataset_id
    if len(display) > 128:
        raise invalid("dataset.display_name must be at most 128 characters")
    rec = FileRec(key(account, dataset_id), ctx.store.take_seq(), 0, int(ctx.now), display,
                  PREFIX + fmt)
    ctx.store.put_file(rec)
    return Reply(dataset_json(rec))


def list_datasets(ctx: Ctx, request: Request, account: str) -> Reply:
    mine = [r for r in ctx.store.files.values()
            if is_dataset(r) and split_key(r.id)[0] == account_of(account)]
    chunk, token = page(request, mine, {"name": lambda r: r.id, "createTime": lambda r: r.seq})
    return Reply({"datasets": [dataset_json(r) for r in chunk], "nextPageToken": token,
                  "totalSize": len(mine)})


def get_dataset(ctx: Ctx, request: Request, account: str, dataset_id: str) -> Reply:
    return Reply(dataset_json(dataset(ctx, account, dataset_id)))


def delete_dataset(ctx: Ctx, request: Request, account: str, dataset_id: str) -> Reply:
    ctx.store.drop_file(dataset(ctx, account, dataset_id).id)
    return Reply({})


def upload_dataset(ctx: Ctx, request: Request, account: str, dataset_id: str) -> Reply:
    rec = dataset(ctx, account, dataset_id)
    if request.mimetype != "multipart/form-data":
        raise invalid("expected a multipart/form-data body with a 'file' field")
    unknown = sorted((set(request.form) | set(request.files)) - {"file"})
    if unknown:
        raise invalid(f"unknown form field \"{unknown[0]}\"")
    upload = request.files.get("file")
    if upload is None:
        raise invalid("file is required")
    if rec.expires_at is not None:
        raise FireworksError("FAILED_PRECONDITION",
                             f"Dataset \"{dataset_name(account, dataset_id)}\" is already "
                             "uploaded (state READY)")
    size = upload.stream.seek(0, os.SEEK_END)
    upload.stream.seek(0)
    filename = upload.filename or "upload"
    if size > MAX_UPLOAD:
        raise invalid(f"the file has {size} bytes; :upload takes at most {MAX_UPLOAD}")
    if not filename.lower().endswith(".jsonl"):
        raise invalid(f"invalid file {filename!r}: datasets are .jsonl files")
    problem = datafile.jsonl_problem(iter(lambda: upload.stream.read(_READ), b""))
    if problem:
        raise invalid(f"invalid dataset file: {problem}")
    upload.stream.seek(0)
    ctx.store.write_blob(rec.id, iter(lambda: upload.stream.read(_READ), b""))
    done = replace(rec, bytes=size, expires_at=int(ctx.now))
    ctx.store.put_file(done)
    return Reply({"id": dataset_id, "object": "file", "bytes": size,
                  "created_at": rec.created_at, "filename": filename, "purpose": "fine-tune"})


# models -----------------------------------------------------------------------------------------
def base_name(model_id: str) -> str:
    return f"accounts/{BASE_ACCOUNT}/models/{model_id}"


def producer(ctx: Ctx, name: str) -> JobRec | None:
    return next((j for j in ctx.store.jobs.values() if j.fine_tuned_model == name), None)


def _base_json(model_id: str) -> dict[str, Any]:
    return {"name": base_name(model_id), "displayName": model_id, "kind": "HF_BASE_MODEL",
            "state": "READY", "status": {"code": "OK", "message": ""},
            "contextLength": BASES[model_id], "tunable": True, "supportsLora": True,
            "createTime": "2024-07-23T00:00:00.000Z", "public": True}


def model_json(ctx: Ctx, rec: ModelRec) -> dict[str, Any]:
    job = producer(ctx, rec.id)
    body: dict[str, Any] = {"name": rec.id, "displayName": rec.id.rsplit("/", 1)[-1],
                            "kind": "HF_PEFT_ADDON", "state": "READY",
                            "status": {"code": "OK", "message": ""},
                            "createTime": rfc3339(rec.created), "public": False}
    if job is not None:
        account, job_id = split_key(job.id)
        body["fineTuningJob"] = f"accounts/{account}/supervisedFineTuningJobs/{job_id}"
        config = job.hyperparameters.get("fireworks", {})
        body["peftDetails"] = {"baseModel": config.get("baseModel", job.model),
                               "r": config.get("loraRank", 8),
                               "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    return body


def _account_models(ctx: Ctx, account: str) -> list[ModelRec]:
    prefix = f"accounts/{account}/models/"
    return [m for m in ctx.store.models.values() if m.id.startswith(prefix)]


def list_models(ctx: Ctx, request: Request, account: str) -> Reply:
    account_of(account)
    if account == BASE_ACCOUNT:
        chunk, token = page(request, sorted(BASES), {"name": lambda m: m})
        return Reply({"models": [_base_json(m) for m in chunk], "nextPageToken": token,
                      "totalSize": len(BASES)})
    mine = _account_models(ctx, account)
    chunk2, token = page(request, mine, {"name": lambda m: m.id, "createTime": lambda m: m.created})
    return Reply({"models": [model_json(ctx, m) for m in chunk2], "nextPageToken": token,
                  "totalSize": len(mine)})


def _model(ctx: Ctx, account: str, model_id: str) -> ModelRec:
    name = f"accounts/{account_of(account)}/models/{model_id}"
    rec = ctx.store.models.get(name)
    if rec is None:
        raise not_found("Model", name)
    return rec


def get_model(ctx: Ctx, request: Request, account: str, model_id: str) -> Reply:
    if account == BASE_ACCOUNT and model_id in BASES:
        return Reply(_base_json(model_id))
    return Reply(model_json(ctx, _model(ctx, account, model_id)))


def delete_model(ctx: Ctx, request: Request, account: str, model_id: str) -> Reply:
    if account == BASE_ACCOUNT:
        raise FireworksError("PERMISSION_DENIED", "base models cannot be deleted")
    ctx.store.drop_model(_model(ctx, account, model_id).id)
    return Reply({})


# chat -------------------------------------------------------------------------------------------
def _chat_model(ctx: Ctx, name: str) -> chat.ChatModel | None:
    """A base of ``BASES`` answers generically; a fine-tuned model from what it (and the model
    it was warm-started from) learned."""
    if name.startswith(f"accounts/{BASE_ACCOUNT}/models/") and name.rsplit("/", 1)[-1] in BASES:
        return chat.ChatModel(name, "o200k_base", ())
    if name not in ctx.store.models:
        return None
    paths = []
    job = producer(ctx, name)
    while job is not None:
        paths.append(ctx.store.blob_path(chat.training_blob(job.id)))
        job = producer(ctx, job.model)
    return chat.ChatModel(name, "o200k_base", tuple(paths))


def completion(ctx: Ctx, request: Request) -> Reply:
    try:
        body = json_body_plain(request)
    except FireworksError as exc:
        raise InferenceError(400, exc.message) from None
    model = _chat_model(ctx, str(body["model"]))
    if model is None:
        raise InferenceError(404, "Model not found, inaccessible, and/or not deployed",
                             "NOT_FOUND")
    return chat.complete(ctx, body, model)


def json_body_plain(request: Request) -> dict[str, Any]:
    """A chat body: Fireworks' snake_case keys (no camelCase here), messages checked."""
    body = parse_json(request.get_data() or b"null")
    if not isinstance(body, dict):
        raise invalid("expected a JSON object")
    unknown = sorted(set(body) - set(_CHAT_KEYS))
    if unknown:
        raise invalid(f"Extra inputs are not permitted, field: '{unknown[0]}'")
    if not isinstance(body.get("model"), str):
        raise invalid("field 'model' is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant", "tool")
            for m in messages):
        raise invalid("field 'messages' must be a non-empty list of messages with a role")
    return body
