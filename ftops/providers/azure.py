"""Type ``azure``: Azure OpenAI, through the SDK's ``AzureOpenAI`` client. Reads and changes go
through the same ``Remote`` as type ``openai`` (the API is the same); what differs is the client,
the key's default variable and what the endpoint is known to offer."""

from __future__ import annotations

from openai import AzureOpenAI, DefaultHttpxClient

from ftops.providers.features import PROBED
from ftops.spec import Provider

# AzureOpenAI reads this variable itself; naming it lets the missing-key error say so.
KEY_ENV = "AZURE_OPENAI_API_KEY"
CAPABILITIES = PROBED  # neither the metadata filter nor the Uploads API is documented there


def make_client(provider: Provider, key: str, *, max_retries: int,
                http_client: DefaultHttpxClient | None) -> AzureOpenAI:
    """The SDK client for an ``azure`` entry: its endpoint and pinned ``api_version``."""
    assert provider.endpoint is not None  # the spec resolver requires it for type azure
    return AzureOpenAI(azure_endpoint=provider.endpoint, api_version=provider.api_version,
                       api_key=key, max_retries=max_retries, http_client=http_client)
