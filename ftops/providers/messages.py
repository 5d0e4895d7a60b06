"""SDK failures as one line for people: what the provider said, never a key."""

from __future__ import annotations

import openai

from ftops.errors import redact


def api_error_message(exc: openai.APIError) -> str:
    """One line for an API failure that never echoes a key."""
    if isinstance(exc, openai.AuthenticationError):
        return ("the API rejected the key (401): check OPENAI_API_KEY, or the api_key_env "
                "of the provider in use")
    if isinstance(exc, openai.APIStatusError):
        return f"API error {exc.status_code}: {redact(str(exc.message))}"
    return f"cannot reach the API: {type(exc).__name__}"
