"""What every endpoint handler shares: the error type, the reply, request parsing, pagination."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request

from ftops.emulator.store import Store

T = TypeVar("T")


class ApiError(Exception):
    """An error answered with OpenAI's body: ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def http_message(exc: HTTPException) -> str:
    """What an error of werkzeug's (raised while reading the request) tells the client."""
    if isinstance(exc, RequestEntityTooLarge):
        return TOO_LARGE
    return exc.description or exc.name


def http_error(exc: HTTPException) -> ApiError:
    """OpenAI's error body for an error werkzeug raised: its status, never an HTML page."""
    status = exc.code or 400
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return ApiError(status, http_message(exc), kind=kind)


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


@dataclass(frozen=True)
class Reply:
    body: Any  # JSON-serialisable, or an open binary file streamed as it is
    status: int = 200
    content_type: str = "application/octet-stream"  # of a file body (a JSON body is JSON)
    headers: dict[str, str] | None = None  # of a JSON body: ARM's Azure-AsyncOperation, say


@dataclass(frozen=True)
class Ctx:
    """One request's view of the service: the state, the time, and the job duration setting."""

    store: Store
    now: float
    job_seconds: float
    org_id: str = "org-emulator"
    org_slug: str = "emulator"
    metadata_filter: bool = True  # False: answer like an endpoint without the metadata filter
    flavor: str = "openai"  # the provider whose calendar applies (``retirement``)
    azure_rules: bool = False  # Azure's job rules (``azure_jobs``) apply to this request
    drop_metadata: bool = False  # jobs accept metadata but never keep it (``jobspec``)


Handler = Callable[..., Reply]


# What a JSON body may hold. RFC 8259 §6 has no NaN or Infinity: Python's json accepts them,
# but the SDK never sends them (openai/_utils/_json.py dumps with allow_nan=False), and I-JSON
# (RFC 7493 §2.2) keeps numbers within a 64-bit float. The emulator refuses the rest, so nothing
# non-finite is stored or echoed (its answers are strict JSON too, ``server._json``). Depth and
# size are the emulator's own safety limits, set above what OpenAI's guides allow: at most 10
# levels of nesting in a structured-output schema (some 25 levels of JSON in a request), and
# 50 MB of images in a request.
MAX_JSON_DEPTH = 64
MAX_JSON_BODY = 64 << 20
# werkzeug's own limits (Request.max_form_memory_size and max_form_parts) and MAX_JSON_BODY.
TOO_LARGE = (
    "The request is too large: a form text field may hold at most 500000 bytes, a form at most "
    "1000 parts and a JSON body at most 64 MiB (the emulator's safety limits)."
)
NOT_JSON = (
    "We could not parse the JSON body of your request. The API expects a JSON object "
    "with Content-Type: application/json."
)


def parse_json(data: bytes) -> Any:
    """A JSON document as the service reads one; ApiError 400 for what it refuses."""
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite_float,
                           parse_int=_finite_int)
    except RecursionError:  # the C scanner's own depth limit, far beyond MAX_JSON_DEPTH
        raise _too_deep() from None
    except _Overflow as exc:
        raise invalid(f"{NOT_JSON} {exc}") from None
    except ValueError:  # malformed, not UTF-8, NaN/Infinity, or an int of over 4300 digits
        raise invalid(NOT_JSON) from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise _too_deep()
    return value


class _Overflow(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Overflow(f"The number {text[:32]} is out of the range of a 64-bit float.")
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    try:
        float(value)
    except OverflowError:
        raise _Overflow(f"The number {text[:32]}... is out of the range of a 64-bit float."
                        ) from None
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep() -> ApiError:
    return invalid(
        f"The JSON body of your request nests arrays and objects more than {MAX_JSON_DEPTH} "
        "levels deep (the emulator's safety limit)."
    )


def json_body(request: Request, allowed: Iterable[str]) -> dict[str, Any]:
    """The JSON object sent, refusing keys the endpoint does not know (as the API does)."""
    body = parse_json(request.get_data() or b"null")
    if not isinstance(body, dict):
        raise invalid(NOT_JSON)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise invalid(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    return body


def required(body: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    name = f"{where}{key}"
    if body.get(key) is None:
        raise invalid(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
    return typed(body, key, kind, where)


def typed(body: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    """``body[key]`` if absent/None or of ``kind`` (bool is never an int here)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise invalid(
            f"Invalid type for '{where}{key}': expected {kind.__name__}.",
            f"{where}{key}",
            "invalid_type",
        )
    return value


def query_limit(request: Request, default: int, maximum: int) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        raise invalid(f"Invalid 'limit': expected an integer from 1 to {maximum}.", "limit")
    return limit


def page_after(
    items: list[T], key: Callable[[T], str], after: str | None, limit: int
) -> tuple[list[T], bool]:
    """The ``limit`` items following the one with id ``after`` in ``items``; and ``has_more``."""
    start = 0
    if after:
        ids = [key(item) for item in items]
        if after not in ids:
            raise invalid(f"Invalid 'after': no object with id '{after}' in this list.", "after")
        start = ids.index(after) + 1
    chunk = items[start : start + limit + 1]
    return chunk[:limit], len(chunk) > limit


def not_found(kind: str, object_id: str, param: str = "id") -> ApiError:
    return ApiError(404, f"No such {kind}: {object_id}", param=param, code="not_found")
