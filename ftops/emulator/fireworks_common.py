"""What the Fireworks dialect's handlers share: its two error bodies, resource names and ids,
camelCase JSON bodies refused on unknown keys, AIP-158 pagination and RFC 3339 times.

Fireworks' control plane (``/v1/accounts/...``) is a gRPC gateway: an error is
``{"code": <gRPC code number>, "message": ..., "details": []}`` with the HTTP status of that
code (google.rpc.Status as grpc-gateway writes it). Its inference API (chat completions) answers
OpenAI's way, ``{"error": {"object": "error", "type", "code", "message"}}``. See ``fireworks``
for the sources and what could not be confirmed.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from werkzeug.wrappers import Request

from ftops.emulator.common import ApiError, parse_json

T = TypeVar("T")
# google.rpc.Code numbers, and the HTTP status grpc-gateway maps each to.
_GRPC = {
    "INVALID_ARGUMENT": (3, 400),
    "FAILED_PRECONDITION": (9, 400),
    "OUT_OF_RANGE": (11, 400),
    "UNAUTHENTICATED": (16, 401),
    "PERMISSION_DENIED": (7, 403),
    "NOT_FOUND": (5, 404),
    "ALREADY_EXISTS": (6, 409),
    "RESOURCE_EXHAUSTED": (8, 429),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
}
# Resource ids (AIP-122 as Fireworks applies it): lower-case letters, digits and hyphens, a
# letter first, no hyphen last, at most 63 characters.
ID_RULE = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
MAX_PAGE = 200
DEFAULT_PAGE = 50
SEP = "."  # joins an account and an id into a store key (neither may hold a dot)


class FireworksError(ApiError):
    """A control-plane error, in grpc-gateway's body."""

    def __init__(self, code: str, message: str) -> None:
        number, status = _GRPC[code]
        super().__init__(status, message, code=code)
        self.number = number

    def body(self) -> dict[str, Any]:
        return {"code": self.number, "message": self.message, "details": []}


class InferenceError(ApiError):
    """An inference error, in the OpenAI-compatible body of Fireworks' inference API."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(status, message, kind=kind, code=kind)

    def body(self) -> dict[str, Any]:
        return {"error": {"object": "error", "type": self.kind, "code": self.code,
                          "message": self.message}}


def invalid(message: str) -> FireworksError:
    return FireworksError("INVALID_ARGUMENT", message)


def not_found(kind: str, name: str) -> FireworksError:
    return FireworksError("NOT_FOUND", f"{kind} \"{name}\" not found")


def check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not ID_RULE.fullmatch(value):
        raise invalid(f"invalid {what} {value!r}: use 1 to 63 characters of a-z, 0-9 and '-', "
                      "starting with a letter and not ending with '-'")
    return value


def key(account: str, object_id: str) -> str:
    return f"{account}{SEP}{object_id}"


def split_key(stored: str) -> tuple[str, str]:
    account, _, object_id = stored.partition(SEP)
    return account, object_id


def account_of(account: str) -> str:
    """The path's account id, checked; the emulator serves any well-formed account."""
    return check_id(account, "account id")


def rfc3339(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


def json_body(request: Request, allowed: Sequence[str]) -> dict[str, Any]:
    """The JSON object sent; an unknown field is refused, as protobuf JSON parsing refuses it.
    Fields may be spelled camelCase (what the SDK sends) or snake_case (proto names)."""
    body = parse_json(request.get_data() or b"{}")
    if not isinstance(body, dict):
        raise invalid("invalid JSON payload: expected an object")
    out: dict[str, Any] = {}
    for name, value in body.items():
        wire = _camel(name) if isinstance(name, str) else name
        if wire not in allowed:
            raise invalid(f"proto: unknown field \"{name}\"")
        out[wire] = value
    return out


def typed(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise invalid(f"invalid value for field \"{name}\": {value!r}")
    return value


def page(request: Request, items: list[T], order_key: dict[str, Callable[[T], Any]]) -> tuple[
        list[T], str]:
    """One page of ``items`` (already filtered) and the next page token ("" on the last page).

    ``orderBy`` names one of ``order_key`` with an optional `` desc``; the default order is by
    name. ``filter`` (AIP-160) is refused: the emulator implements none of its grammar.
    """
    args = request.args
    unknown = sorted(set(args) - {"pageSize", "pageToken", "orderBy", "filter", "readMask"})
    if unknown:
        raise invalid(f"unknown query parameter \"{unknown[0]}\"")
    if args.get("filter"):
        raise invalid("the emulator does not implement list filters")
    field, _, direction = (args.get("orderBy") or "name").strip().partition(" ")
    if field not in order_key or direction.strip() not in ("", "desc", "asc"):
        raise invalid(f"invalid order_by \"{args.get('orderBy')}\"")
    ordered = sorted(items, key=order_key[field], reverse=direction.strip() == "desc")
    try:
        size = int(args.get("pageSize") or DEFAULT_PAGE)
    except ValueError:
        raise invalid("invalid page_size") from None
    if size < 0:
        raise invalid("page_size must not be negative")
    size = min(size or DEFAULT_PAGE, MAX_PAGE)
    start = _offset(args.get("pageToken") or "", len(ordered))
    chunk = ordered[start:start + size]
    more = start + size < len(ordered)
    return chunk, _token(start + size) if more else ""


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str, length: int) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        offset = int(text.removeprefix("offset:")) if text.startswith("offset:") else -1
    except ValueError:
        offset = -1
    if not 0 <= offset <= length:
        raise invalid("invalid page_token")
    return offset
