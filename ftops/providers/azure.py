"""Type ``azure``: Azure OpenAI. Reads and changes go through the same ``Remote`` as type
``openai`` (the API is the same); what differs is the client, the key's default variable, what
the endpoint is known to offer, and ``trainingType`` (``Remote.create_job``).

The v1 API is the default: ``<endpoint>/openai/v1/`` with the plain ``OpenAI`` client and no
api-version (Microsoft Learn, "Azure OpenAI in Microsoft Foundry Models v1 API", 2025-08).
``api_version:`` keeps the older dialect through ``AzureOpenAI``. The key comes from
``api_key_env``; with ``auth: entra``, tokens come from azure-identity's
``DefaultAzureCredential`` for the Cognitive Services scope, refreshed by the SDK per request.
"""

from __future__ import annotations

from collections.abc import Callable

from openai import AzureOpenAI, DefaultHttpxClient, OpenAI

from ftops.errors import UsageError
from ftops.providers.deployments import EXTRA_HINT
from ftops.spec import Provider

SCOPE = "https://cognitiveservices.azure.com/.default"


def v1_url(endpoint: str) -> str:
    return endpoint.rstrip("/") + "/openai/v1/"


def needs_extra(what: str) -> UsageError:
    return UsageError(f"{what} needs the Azure libraries (azure-identity, "
                      "azure-mgmt-cognitiveservices), which are not installed", hint=EXTRA_HINT)


def token_provider() -> Callable[[], str]:
    """Entra ID bearer tokens for the data plane (environment, workload identity such as
    GitHub OIDC after azure/login, managed identity, Azure CLI: DefaultAzureCredential)."""
    try:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider
    except ImportError:
        raise needs_extra("auth: entra") from None
    provide: Callable[[], str] = get_bearer_token_provider(DefaultAzureCredential(), SCOPE)
    return provide


def make_client(provider: Provider, key: str | None, *, max_retries: int,
                http_client: DefaultHttpxClient | None) -> OpenAI:
    """The SDK client for an ``azure`` entry: v1 unless an ``api_version`` is pinned; the
    key, else (``auth: entra``) a token provider."""
    assert provider.endpoint is not None  # the spec resolver requires it for type azure
    if provider.api_version:
        if key is None:
            return AzureOpenAI(azure_endpoint=provider.endpoint,
                               api_version=provider.api_version,
                               azure_ad_token_provider=token_provider(),
                               max_retries=max_retries, http_client=http_client)
        return AzureOpenAI(azure_endpoint=provider.endpoint, api_version=provider.api_version,
                           api_key=key, max_retries=max_retries, http_client=http_client)
    return OpenAI(base_url=v1_url(provider.endpoint),
                  api_key=key if key is not None else token_provider(),
                  max_retries=max_retries, http_client=http_client)
