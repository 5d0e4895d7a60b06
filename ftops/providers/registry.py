"""The provider types ftops knows, and one connection per ``providers`` entry.

Capability table (README "Providers"): for each provider kind, whether an optional feature is
documented there (``yes``: used as is, errors are real errors) or unknown (``probe``: tried, and
on 400/404 dropped for the rest of the run with a one-line notice, in favour of a slower path that
gives the same result).

| feature                          | openai | azure | compatible | slower path           |
|----------------------------------|--------|-------|------------|-----------------------|
| ``metadata[k]=v`` on job listing | yes    | probe | probe      | list all, filter here |
| Uploads API (files >= 64 MiB)    | yes    | probe | probe      | one ``files.create``  |

"compatible" is an ``openai`` entry with its own ``base_url``.

Job listings are filtered here in every case, so an endpoint that silently ignores the filter
is still read correctly. ftops never pauses jobs, so pause/resume needs no entry (a ``paused``
job plans as ``pending`` everywhere).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from openai import DefaultHttpxClient, OpenAI

from ftops.errors import FtopsError
from ftops.providers import azure, deployments
from ftops.providers import openai as openai_type
from ftops.providers.deployments import Deployments
from ftops.providers.features import Capabilities, Features
from ftops.providers.openai import Remote
from ftops.recognise import Expected
from ftops.spec import Provider, ResolvedModel

if TYPE_CHECKING:  # the azure extra may be absent at run time
    from azure.core.credentials import TokenCredential

DEFAULT_KEY_ENV = {"openai": openai_type.KEY_ENV, "azure": azure.KEY_ENV}
CAPABILITIES: dict[str, Capabilities] = {
    "openai": openai_type.CAPABILITIES,
    "azure": azure.CAPABILITIES,
    "compatible": openai_type.COMPATIBLE_CAPABILITIES,
}


def kind(provider: Provider) -> str:
    """The capability table's column: an ``openai`` entry with its own ``base_url`` is some other
    OpenAI-compatible server."""
    return "compatible" if provider.type == "openai" and provider.base_url else provider.type


@dataclass(frozen=True)
class Connection:
    client: OpenAI
    features: Features
    provider_type: str = "openai"
    manager: Deployments | None = None

    def remote(self, repo: str, *,
               adopted: Mapping[str, Mapping[str, str]] | None = None,
               expected: tuple[Expected, ...] = ()) -> Remote:
        """The account behind this connection, as ``repo`` sees it; ``expected`` are the
        declared models, to recognise jobs that came back without their metadata."""
        return Remote(self.client, repo=repo, provider=self.features.provider,
                      features=self.features, adopted=adopted,
                      provider_type=self.provider_type, expected=expected,
                      deployments=self.manager)


def _loopback(url: str | None) -> bool:
    host = urlsplit(url).hostname if url else None
    return host in ("127.0.0.1", "localhost", "::1")


def make_client(provider: Provider, *, env: Mapping[str, str] | None = None,
                max_retries: int = 2) -> OpenAI:
    """The SDK client for ``provider``; the key comes from the variable ``api_key_env`` names.

    With no ``providers`` block the implicit ``openai`` provider has no settings, so the SDK's
    own variables (OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID) apply as they always did.
    Loopback endpoints ignore proxy settings: local traffic must not leave the machine.
    """
    env = os.environ if env is None else env
    variable = provider.api_key_env or DEFAULT_KEY_ENV[provider.type]
    key = env.get(variable)
    url = provider.endpoint if provider.type == "azure" else provider.base_url
    http_client = DefaultHttpxClient(trust_env=False) if _loopback(url) else None
    if provider.type == "azure":
        # auth: entra takes tokens from azure-identity, not a key from the environment.
        key = None if provider.auth == "entra" else key
        if key or provider.auth == "entra":
            return azure.make_client(provider, key, max_retries=max_retries,
                                     http_client=http_client)
    if not key:
        # The implicit default provider has no entry to name; a declared one is named.
        who = f" for provider {provider.name}" if provider.file else ""
        raise FtopsError(
            f"no API key{who}: {variable} is not set", path=provider.file, line=provider.line,
            hint=f"export {variable}, or try ftops with --emulator")
    return openai_type.make_client(provider, key, max_retries=max_retries,
                                   http_client=http_client)


@contextmanager
def connections(providers: Iterable[Provider], names: Iterable[str], *,
                max_retries: int = 2) -> Iterator[dict[str, Connection]]:
    """A connection per named provider, each with its own client (``--emulator`` runs are
    connected by ``ftops.commands.emulated``, which starts the servers)."""
    declared = {p.name: p for p in providers}
    chosen = [declared[name] for name in sorted(set(names))]
    yield {p.name: connection(p, make_client(p, max_retries=max_retries),
                              management(p, deployments.credential) if manages(p) else None)
           for p in chosen}


def connection(provider: Provider, client: OpenAI,
               manager: Deployments | None = None) -> Connection:
    """``client`` with the features the provider's kind of endpoint is known to offer, and
    its management plane (Azure deployments) where the entry declares one."""
    return Connection(client, Features(provider.name, CAPABILITIES[kind(provider)]),
                      provider.type, manager)


def manages(provider: Provider) -> bool:
    """Whether the entry names an Azure resource whose deployments ftops reads and changes."""
    return provider.type == "azure" and all(
        (provider.subscription, provider.resource_group, provider.account))


def management(provider: Provider, credential: Callable[[], TokenCredential]) -> Deployments:
    """The entry's deployments, with tokens from ``credential()``; a local management URL
    (the emulator) is polled every second rather than the SDK's 30."""
    local = _loopback(provider.management_url)
    return Deployments(provider, credential(), polling_interval=1.0 if local else None)


def adoptions(models: Iterable[ResolvedModel], *, repo: str,
              provider: str) -> dict[str, dict[str, str]]:
    """Job id -> the ftops labels an adopted job stands for (it cannot carry them itself: job
    metadata is fixed at creation)."""
    return {
        m.adopt[0]: {"ftops_repo": repo, "ftops_model": m.name, "ftops_fingerprint": m.adopt[1]}
        for m in models if m.adopt is not None and m.provider == provider
    }
