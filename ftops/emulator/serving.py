"""The server's small parts: the request class, quiet logging, strict-JSON answers, and the
options ``Emulator`` takes beyond the service itself."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from types import FrameType
from typing import Any, TypedDict

from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from ftops.emulator.common import ApiError
from ftops.emulator.multipart import FormParser

_log = logging.getLogger("ftops.emulator.server")


class EmulatorRequest(Request):
    form_data_parser_class = FormParser


class Dropped(ConnectionAbortedError):
    """Raised after closing the socket; werkzeug treats it as a dropped connection."""


class QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        if type != "info":  # per-request lines are noise; keep real errors
            super().log(type, message, *args)


def bug() -> ApiError:
    return ApiError(500, "The emulator failed on this request (see its log).", kind="server_error")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if status == 204:  # No Content (ARM's answer to deleting what is not there): no body at all
        return Response(status=204, headers=headers or {})
    # Strict JSON (RFC 8259): Python would otherwise write NaN and Infinity, which the service
    # never sends and strict parsers refuse. Failing here is a bug: input is checked on entry.
    try:
        text = json.dumps(body, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        _log.exception("emulator bug: an answer that is not JSON")
        text, status = json.dumps(bug().body()), 500
    return Response(text, status=status, mimetype="application/json", headers=headers or {})


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (and SIGINT) stop ``serve_forever`` as Ctrl+C does, so the temporary state is
    removed."""
    raise KeyboardInterrupt


class Options(TypedDict, total=False):
    """What the emulator adds to the service, each off or at its usual value by default."""

    fault_rate: float  # share of API requests failed with an injected fault (0)
    faults: Iterable[str]  # the fault modes drawn from (FAULT_MODES)
    latency_ms: float  # delay added to every API request (0)
    retry_after: float  # seconds advised with injected 429/503 (1)
    metadata_filter: bool  # False: refuse the metadata filter on job listing (True)
    log_size: int  # latest requests kept by requests() (DEFAULT_SIZE)
    # True: job creates accept metadata but never keep it, as a provider without job metadata
    # (jobs read back metadata: null, so a metadata filter matches no job) (False)
    drop_metadata: bool
    # True: Azure's job rules (``azure_jobs``) on the api-version surface too; the v1 surface
    # always has them (False)
    azure_rules: bool
