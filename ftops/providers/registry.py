"""The provider types ftops knows, and one connection per ``providers`` entry.

Capability table (README "Providers"): for each provider kind, whether an optional feature is
documented there (``yes``: used as is, errors are real errors), unknown (``probe``: tried, and
on 400/404 dropped for the rest of the run with a one-line notice, in favour of a slower path that
gives the same result) or never relied on (``no``: the slower path always).

| feature                          | openai | azure | compatible | nebius, together, fireworks |
|----------------------------------|--------|-------|------------|-----------------------------|
| ``metadata[k]=v`` on job listing | yes    | no    | probe      | no (list all, filter here)  |
| job metadata kept                | yes    | probe | probe      | no (``ftops.recognise``)    |
| Uploads API (files >= 64 MiB)    | yes    | probe | probe      | no (one upload request)     |

"compatible" is an ``openai`` entry with its own ``base_url``. The SDKs of Together and
Fireworks are extras, imported only when a spec uses them.

Job listings are filtered here in every case, so an endpoint that silently ignores the filter
is still read correctly. ftops never pauses jobs, so pause/resume needs no entry (a ``paused``
job plans as ``pending`` everywhere).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftops.errors import FtopsError, UsageError
from ftops.providers import deployments, loopback
from ftops.providers.base import Account
from ftops.providers.deployments import Deployments
from ftops.providers.features import (
    AZURE,
    DOCUMENTED,
    METADATA_FREE,
    PROBED,
    Capabilities,
    Features,
)
from ftops.recognise import Expected
from ftops.spec import Provider, ResolvedModel

if TYPE_CHECKING:  # the azure extra may be absent at run time
    from azure.core.credentials import TokenCredential

# The SDK a provider type needs beyond openai, and the extra that installs it.
EXTRAS = {"together": ("together", "ftops[together]"),
          "fireworks": ("fireworks", "ftops[fireworks]")}
# The variable each type's key is read from (AzureOpenAI reads its own too: naming it lets the
# missing-key error say so). The provider modules are imported only for a type in use: a run on
# Together or Fireworks alone never loads the openai SDK (~0.7 s of every such command).
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY",
                   "nebius": "NEBIUS_API_KEY", "together": "TOGETHER_API_KEY",
                   "fireworks": "FIREWORKS_API_KEY"}
CAPABILITIES: dict[str, Capabilities] = {
    "openai": DOCUMENTED,  # OpenAI's own API documents every optional feature
    "azure": AZURE,
    "compatible": PROBED,  # an ``openai`` entry with its own ``base_url``: unknown
    "nebius": METADATA_FREE,
    "together": METADATA_FREE,
    "fireworks": METADATA_FREE,
}


def kind(provider: Provider) -> str:
    """The capability table's column: an ``openai`` entry with its own ``base_url`` is some other
    OpenAI-compatible server."""
    return "compatible" if provider.type == "openai" and provider.base_url else provider.type


@dataclass(frozen=True)
class Connection:
    """One ``providers`` entry's SDK client (of its type), what its endpoint offers, and its
    management plane (Azure deployments) where the entry declares one."""

    client: Any
    features: Features
    provider_type: str = "openai"
    manager: Deployments | None = None
    account: str | None = None  # Fireworks: the account id in its paths

    def remote(self, repo: str, *,
               adopted: Mapping[str, Mapping[str, str]] | None = None,
               expected: tuple[Expected, ...] = ()) -> Account:
        """The account behind this connection, as ``repo`` sees it; ``expected`` are the
        declared models, to recognise jobs that came back without their metadata."""
        name = self.features.provider
        if self.provider_type == "nebius":
            from ftops.providers import nebius

            return nebius.Account(self.client, repo=repo, provider=name, adopted=adopted,
                                  expected=expected, features=self.features)
        if self.provider_type == "together":
            from ftops.providers import together

            return together.TogetherAccount(self.client, repo=repo, provider=name,
                                            expected=expected)
        if self.provider_type == "fireworks":
            from ftops.providers import fireworks

            assert self.account is not None  # the spec resolver requires it for fireworks
            return fireworks.FireworksAccount(self.client, repo=repo, provider=name,
                                              account=self.account, expected=expected,
                                              adopted=adopted)
        from ftops.providers.openai import Remote

        return Remote(self.client, repo=repo, provider=name, features=self.features,
                      adopted=adopted, provider_type=self.provider_type, expected=expected,
                      deployments=self.manager)


def _needs(provider: Provider) -> None:
    """One line naming the extra when the provider type's SDK is not installed."""
    module, extra = EXTRAS.get(provider.type, (None, None))
    if module is not None and importlib.util.find_spec(module) is None:
        raise UsageError(f"provider {provider.name} (type {provider.type}) needs the {module} "
                         "SDK, which is not installed", path=provider.file, line=provider.line,
                         hint=f"pip install '{extra}'")


def make_client(provider: Provider, *, env: Mapping[str, str] | None = None,
                max_retries: int = 2) -> Any:
    """The SDK client for ``provider``; the key comes from the variable ``api_key_env`` names.

    With no ``providers`` block the implicit ``openai`` provider has no settings, so the SDK's
    own variables (OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID) apply as they always did.
    Loopback endpoints ignore proxy settings: local traffic must not leave the machine.
    """
    _needs(provider)
    env = os.environ if env is None else env
    variable = provider.api_key_env or DEFAULT_KEY_ENV[provider.type]
    key = env.get(variable)
    url = provider.endpoint if provider.type == "azure" else provider.base_url
    if provider.type == "openai" and url is None:
        url = os.environ.get("OPENAI_BASE_URL")  # where the SDK will send it (it reads os.environ)
    if provider.type == "azure":
        # auth: entra takes tokens from azure-identity, not a key from the environment.
        key = None if provider.auth == "entra" else key
        if key or provider.auth == "entra":
            from ftops.providers import azure

            return azure.make_client(provider, key, max_retries=max_retries,
                                     http_client=_openai_http(url))
    if not key:
        # The implicit default provider has no entry to name; a declared one is named.
        who = f" for provider {provider.name}" if provider.file else ""
        raise FtopsError(
            f"no API key{who}: {variable} is not set", path=provider.file, line=provider.line,
            hint=f"export {variable}, or try ftops with --emulator")
    if provider.type in ("nebius", "together", "fireworks"):
        return _open_weight_client(provider, key, max_retries)
    from ftops.providers import openai as openai_type

    return openai_type.make_client(provider, key, max_retries=max_retries,
                                   http_client=_openai_http(url))


def _openai_http(url: str | None) -> Any:
    """The openai SDK's HTTP client for a loopback endpoint (no proxies, the shared TLS
    context); None leaves the SDK its own."""
    if not loopback.is_loopback(url):
        return None
    from openai import DefaultHttpxClient

    return DefaultHttpxClient(trust_env=False, verify=loopback.tls())


def _open_weight_client(provider: Provider, key: str, max_retries: int) -> Any:
    """The client of a Nebius, Together or Fireworks entry."""
    if provider.type == "nebius":
        from ftops.providers import nebius

        return nebius.make_client(provider.base_url, key, max_retries)
    if provider.type == "together":
        from ftops.providers import together

        return together.make_client(provider.base_url, key, max_retries)
    if provider.type == "fireworks":
        from ftops.providers import fireworks

        assert provider.account is not None
        return fireworks.make_client(provider.base_url, key, max_retries,
                                     account=provider.account)
    raise AssertionError(provider.type)


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


def connection(provider: Provider, client: Any,
               manager: Deployments | None = None) -> Connection:
    """``client`` with the features the provider's kind of endpoint is known to offer, and
    its management plane (Azure deployments) where the entry declares one."""
    return Connection(client, Features(provider.name, CAPABILITIES[kind(provider)]),
                      provider.type, manager,
                      provider.account if provider.type == "fireworks" else None)


def manages(provider: Provider) -> bool:
    """Whether the entry names an Azure resource whose deployments ftops reads and changes."""
    return provider.type == "azure" and all(
        (provider.subscription, provider.resource_group, provider.account))


def management(provider: Provider, credential: Callable[[], TokenCredential]) -> Deployments:
    """The entry's deployments, with tokens from ``credential()``; a local management URL
    (the emulator) is polled every second rather than the SDK's 30."""
    local = loopback.is_loopback(provider.management_url)
    return Deployments(provider, credential(), polling_interval=1.0 if local else None)


def adoptions(models: Iterable[ResolvedModel], *, repo: str,
              provider: str) -> dict[str, dict[str, str]]:
    """Job id -> the ftops labels an adopted job stands for (it cannot carry them itself: job
    metadata is fixed at creation)."""
    return {
        m.adopt[0]: {"ftops_repo": repo, "ftops_model": m.name, "ftops_fingerprint": m.adopt[1]}
        for m in models if m.adopt is not None and m.provider == provider
    }
