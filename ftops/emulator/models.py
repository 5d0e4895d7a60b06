"""Models endpoints: the base models of the catalog plus the account's fine-tuned models."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from werkzeug.wrappers import Request

from ftops import catalog
from ftops.emulator.common import ApiError, Ctx, Reply


def _base_models(flavor: str) -> list[dict[str, Any]]:
    cat = catalog.load()
    models = []
    for info in cat.models_of(flavor):  # the bases this provider fine-tunes
        # A snapshot's date is in its id; other ids get the day the catalog was recorded.
        dated = re.search(r"(\d{4}-\d{2}-\d{2})$", info.id)
        day = dt.date.fromisoformat(dated.group(1)) if dated else cat.recorded
        created = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())
        # The flavour's own provider date, the one its chat completions follow (``retirement``):
        # Azure serves OpenAI's bases past OpenAI's shutdown, and says so.
        day_off = cat.shutdown(flavor, info.id)
        shutdown = day_off.isoformat() if day_off else None
        for model_id in (info.id, *info.aliases):
            models.append(
                {
                    "id": model_id,
                    "object": "model",
                    "created": created,
                    "owned_by": "system",
                    "shutdown_date": shutdown,
                }
            )
    return models


def _fine_tuned(ctx: Ctx) -> list[dict[str, Any]]:
    return [
        {
            "id": rec.id,
            "object": "model",
            "created": rec.created,
            "owned_by": rec.owned_by,
            "shutdown_date": None,
        }
        for rec in ctx.store.models.values()
    ]


def _missing(model: str) -> ApiError:
    return ApiError(
        404, f"The model '{model}' does not exist", param="model", code="model_not_found"
    )


def list_models(ctx: Ctx, request: Request) -> Reply:
    return Reply({"object": "list", "data": _base_models(ctx.flavor) + _fine_tuned(ctx)})


def retrieve_model(ctx: Ctx, request: Request, model: str) -> Reply:
    for entry in _base_models(ctx.flavor) + _fine_tuned(ctx):
        if entry["id"] == model:
            return Reply(entry)
    raise _missing(model)


def delete_model(ctx: Ctx, request: Request, model: str) -> Reply:
    if model not in ctx.store.models:
        if any(entry["id"] == model for entry in _base_models(ctx.flavor)):
            raise ApiError(
                403,
                f"You have insufficient permissions to delete model '{model}': only fine-tuned "
                "models owned by your organization can be deleted.",
                param="model",
                code="model_not_deletable",
            )
        raise _missing(model)
    ctx.store.drop_model(model)
    return Reply({"id": model, "object": "model", "deleted": True})
