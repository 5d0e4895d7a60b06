"""What every endpoint handler shares: the error type, the reply, request parsing, pagination."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

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


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


@dataclass(frozen=True)
class Reply:
    body: Any  # JSON-serialisable, or an open binary file streamed as it is
    status: int = 200


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


Handler = Callable[..., Reply]


def json_body(request: Request, allowed: Iterable[str]) -> dict[str, Any]:
    """The JSON object sent, refusing keys the endpoint does not know (as the API does)."""
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise invalid(
            "We could not parse the JSON body of your request. The API expects a JSON object "
            "with Content-Type: application/json."
        )
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
