"""SDK failures as one line for people: what the provider said, never a key."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ftops.errors import redact

if TYPE_CHECKING:  # a run on Together or Fireworks alone never loads the openai SDK
    import openai


def api_error_message(exc: openai.APIError) -> str:
    """One line for an API failure that never echoes a key."""
    import openai  # loaded already: ``exc`` is one of its errors

    if isinstance(exc, openai.AuthenticationError):
        return ("the API rejected the key (401): check OPENAI_API_KEY, or the api_key_env "
                "of the provider in use")
    if isinstance(exc, openai.APIStatusError):
        return f"API error {exc.status_code}: {redact(str(exc.message))}"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach the API at {_base_url(exc)}: {_cause(exc)}"
    return f"cannot reach the API: {type(exc).__name__}"


# The first path segment of each endpoint ftops calls: what precedes it is the base URL.
_ENDPOINTS = ("files", "fine_tuning", "models", "uploads", "chat", "deployments")


def _base_url(exc: openai.APIConnectionError) -> str:
    """The base URL the failed request went to (``OPENAI_BASE_URL``, an Azure endpoint)."""
    try:
        url = exc.request.url
    except RuntimeError:  # an error made without a request
        return "(unknown URL)"
    segments = url.path.split("/")
    cut = next((i for i, s in enumerate(segments) if s in _ENDPOINTS), len(segments))
    origin = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
    return redact(origin + "/".join(segments[:cut]).rstrip("/"))


def _cause(exc: BaseException) -> str:
    """The innermost reason the connection failed (refused, no such host, timed out)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        nxt = exc.__cause__ or exc.__context__
        assert nxt is not None
        exc = nxt
    text = redact(" ".join(str(exc).split()))
    return text or type(exc).__name__


# The openai SDK's errors that apply and mend tell apart, while it is loaded: only a provider it
# drives raises them, so with it not loaded (a run on Together or Fireworks alone, which need not
# import it) there is nothing to catch.
def rate_limited() -> tuple[type[openai.RateLimitError], ...]:
    sdk = sys.modules.get("openai")
    return (sdk.RateLimitError,) if sdk is not None else ()


def already_gone() -> tuple[type[openai.APIStatusError], ...]:
    """What deleting or cancelling something another apply already removed answers."""
    sdk = sys.modules.get("openai")
    return (sdk.NotFoundError, sdk.BadRequestError, sdk.ConflictError) if sdk else ()
