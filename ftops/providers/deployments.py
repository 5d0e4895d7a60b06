"""Azure OpenAI deployments, on the management plane (ARM) of one ``providers`` entry: the
subscription's resource group and account the entry names. A fine-tuned model serves only
through a deployment, so this is how ``apply`` puts one to use.

Through the official ``azure-mgmt-cognitiveservices`` client (its ``deployments`` operations)
and an azure-identity credential; both are the ``azure`` extra, imported only when used, so
``ftops`` without it still plans and applies everything else. Every call returns ftops's own
``Deployment`` (``ftops.state``), and every Azure error leaves this module as one
``RemoteError`` line with ARM's code and message: no SDK object gets out.

azure-core refuses to send a bearer token over plain http unless an operation passes
``enforce_https=False``; that is passed only for a loopback ``management_url`` (the emulator,
or a local proxy), so a mistyped ``http://`` address elsewhere fails rather than leaks a token.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ftops.errors import RemoteError, UsageError, env_secrets, redact
from ftops.spec import Provider
from ftops.state import Deployment

if TYPE_CHECKING:  # the azure extra may be absent at run time; mypy reads its types
    from azure.core.credentials import TokenCredential
    from azure.core.exceptions import AzureError
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
    from azure.mgmt.cognitiveservices import models as arm

ARM_URL = "https://management.azure.com"
EXTRA_HINT = "pip install 'ftops[azure]'"
# ARM's spelling of each sku, keyed by the spec's (lower case).
ARM_SKUS = {"standard": "Standard", "globalstandard": "GlobalStandard", "developer": "Developer"}
FINE_TUNED_VERSION = "1"  # a fine-tuned model deploys as its full id, version 1
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_FAILED = frozenset({"Failed", "Canceled"})
_NEEDS = ("subscription", "resource_group", "account")
_SIGN_IN = "sign in to Azure: az login, azure/login in GitHub Actions, or a managed identity"
_BEARER = re.compile(r"(?i)\bbearer\s+\S+")


def missing_extra() -> UsageError:
    """The error for a run without the ``azure`` extra installed."""
    return UsageError("Azure deployments need the azure extra (azure-identity, "
                      "azure-mgmt-cognitiveservices), which is not installed", hint=EXTRA_HINT)


def credential() -> TokenCredential:
    """Entra ID tokens for ARM: ``DefaultAzureCredential`` (environment, workload identity
    such as GitHub OIDC after azure/login, managed identity, Azure CLI)."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise missing_extra() from None
    return DefaultAzureCredential()


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine, the only place a token may go over http."""
    return (urlsplit(url).hostname or "").lower() in _LOOPBACK


class Deployments:
    """The deployments of one Azure account, listed, read, created and deleted.

    ``polling_interval`` (seconds) is how long to wait between looks at a create or delete
    that is still running when Azure does not say (Retry-After); None keeps the SDK's 30.
    """

    def __init__(self, provider: Provider, credential: TokenCredential, *,
                 polling_interval: float | None = None) -> None:
        missing = [k for k in _NEEDS if not getattr(provider, k)]
        if missing:
            raise UsageError(f"provider {provider.name}: Azure deployments need "
                             f"{', '.join(missing)} (the Azure resource to deploy in)")
        assert provider.subscription and provider.resource_group and provider.account
        self._provider = provider
        self._group, self._account = provider.resource_group, provider.account
        url = provider.management_url or ARM_URL
        if urlsplit(url).scheme != "https" and not is_loopback(url):
            raise UsageError(f"provider {provider.name}: management_url {url} must be https "
                             "(plain http only to this machine), as tokens are sent to it")
        self._options: dict[str, Any] = {"enforce_https": False} if is_loopback(url) else {}
        self._client = _client(credential, provider.subscription, url, polling_interval)

    def list(self) -> tuple[Deployment, ...]:
        """Every deployment of the account, all pages."""
        with self._errors("listing deployments"):
            pages = self._client.deployments.list(self._group, self._account, **self._options)
            return tuple(self._to_state(d) for d in pages)

    def get(self, name: str) -> Deployment | None:
        """The deployment called ``name``, or None when the account has none by that name."""
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(f"reading deployment {name}"):
            try:
                found = self._client.deployments.get(self._group, self._account, name,
                                                     **self._options)
            except ResourceNotFoundError:
                return None
            return self._to_state(found)

    def create(self, name: str, model: str, sku: str, capacity: int, *,
               wait: bool = True) -> Deployment:
        """Creates (or updates) deployment ``name`` serving ``model``; with ``wait``, returns
        once Azure has provisioned it, else as soon as Azure has accepted it."""
        body = _body(model, sku, capacity)
        with self._errors(f"deploying {model} as {name}"):
            poller = self._client.deployments.begin_create_or_update(
                self._group, self._account, name, body, polling=wait, **self._options)
            made = self._to_state(poller.result())
        if made.state in _FAILED:
            raise RemoteError(f"Azure account {self._account}: deployment {name} ended "
                              f"{made.state}")
        return made

    def delete(self, name: str) -> None:
        """Deletes deployment ``name`` and waits until it is gone; one already gone is fine."""
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(f"deleting deployment {name}"):
            try:
                self._client.deployments.begin_delete(self._group, self._account, name,
                                                      **self._options).result()
            except ResourceNotFoundError:
                return

    def _to_state(self, found: arm.Deployment) -> Deployment:
        props, sku = found.properties, found.sku
        model = props.model if props is not None else None
        return Deployment(
            name=found.name or "",
            model=(model.name if model is not None else None) or "",
            sku=(sku.name or "").lower() if sku is not None else "",
            capacity=(sku.capacity if sku is not None else None) or 0,
            state=(props.provisioning_state if props is not None else None) or "",
            provider=self._provider.name,
        )

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Azure's errors as one ``RemoteError`` line each, saying what ftops was doing."""
        from azure.core.exceptions import AzureError

        try:
            yield
        except AzureError as exc:
            raise azure_error(exc, f"Azure account {self._account}: {what}") from None


def _client(credential: TokenCredential, subscription: str, url: str,
            polling_interval: float | None) -> CognitiveServicesManagementClient:
    try:
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
    except ImportError:
        raise missing_extra() from None
    extra: dict[str, Any] = {}
    if polling_interval is not None:
        extra["polling_interval"] = polling_interval
    return CognitiveServicesManagementClient(credential, subscription, base_url=url, **extra)


def _body(model: str, sku: str, capacity: int) -> arm.Deployment:
    from azure.mgmt.cognitiveservices import models as arm

    arm_sku = ARM_SKUS.get(sku.lower())
    if arm_sku is None:
        raise UsageError(f"unknown deployment sku {sku} (choose from {', '.join(ARM_SKUS)})")
    if capacity < 1:
        raise UsageError(f"deployment capacity must be at least 1, not {capacity}")
    return arm.Deployment(
        sku=arm.Sku(name=arm_sku, capacity=capacity),
        properties=arm.DeploymentProperties(model=arm.DeploymentModel(
            format="OpenAI", name=model, version=FINE_TUNED_VERSION)),
    )


def azure_error(exc: AzureError, doing: str) -> RemoteError:
    """One line for an Azure error: what ftops was ``doing``, then ARM's code and message (or
    the first line of the SDK's own, such as a credential's), tokens and secrets masked."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    error = exc.error if isinstance(exc, HttpResponseError) else None
    code, message = (getattr(error, "code", None), getattr(error, "message", None))
    if not message:
        lines = str(getattr(exc, "message", None) or exc or type(exc).__name__).splitlines()
        message = lines[0] if lines else type(exc).__name__
    text = f"{doing}: {code}: {message}" if code else f"{doing}: {message}"
    secrets = (*env_secrets(), os.environ.get("IDENTITY_HEADER", ""))
    text = redact(_BEARER.sub("Bearer ***", " ".join(text.split())), secrets)
    hint = _SIGN_IN if isinstance(exc, ClientAuthenticationError) else None
    return RemoteError(text, hint=hint)
