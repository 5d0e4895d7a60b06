"""``--emulator``: every provider on an in-process emulator of its own dialect, its account
kept under the repository's ``.ftops/emulator/``. Only the command floor imports this module:
the provider layer never starts servers."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from urllib.request import ProxyHandler, Request, build_opener

from ftops import providers
from ftops.errors import UsageError
from ftops.providers import Connection
from ftops.spec import Provider
from ftops.state import DEFAULT_PROVIDER

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken

    from ftops.emulator import Emulator

EMULATOR_KEY = "sk-emulator"  # the embedded emulator accepts any key; this one is not secret
JOB_SECONDS_ENV = "FTOPS_EMULATOR_JOB_SECONDS"
JOB_SECONDS = 3.0  # long enough to watch a job run, short enough to wait for


def default_job_seconds(env: Mapping[str, str] | None = None) -> float:
    """How long a job (and half as long, a deployment) takes on ``--emulator``:
    ``FTOPS_EMULATOR_JOB_SECONDS`` when set (0: done on the next read), else 3 s."""
    raw = (os.environ if env is None else env).get(JOB_SECONDS_ENV, "").strip()
    if not raw:
        return JOB_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(f"{JOB_SECONDS_ENV}={raw!r} is not a number of seconds",
                         hint=f"use 0 or more, e.g. {JOB_SECONDS_ENV}=0.5, or unset it")
    return value


def emulator_state(root: Path, name: str) -> Path:
    """Where ``--emulator`` keeps a provider's account; ``openai`` keeps its historical file."""
    folder = root / ".ftops" / "emulator"
    return folder / ("state.json" if name == DEFAULT_PROVIDER else f"state-{name}.json")


@contextmanager
def connections(declared: Iterable[Provider], names: Iterable[str], *,
                emulator_root: Path | None = None, job_seconds: float | None = None,
                max_retries: int = 2) -> Iterator[dict[str, Connection]]:
    """A connection per named provider: the real endpoint, or with ``emulator_root`` an
    in-process emulator each (Azure's dialect for ``type: azure``) whose jobs take
    ``job_seconds`` (None: ``default_job_seconds()``)."""
    if emulator_root is None:
        with providers.connections(declared, names, max_retries=max_retries) as real:
            yield real
        return
    from ftops.emulator import Emulator  # only the --emulator path needs the server

    seconds = default_job_seconds() if job_seconds is None else job_seconds
    by_name = {p.name: p for p in declared}
    with ExitStack() as stack:
        out: dict[str, Connection] = {}
        for p in (by_name[name] for name in sorted(set(names))):
            state = emulator_state(emulator_root, p.name)
            state.parent.mkdir(parents=True, exist_ok=True)
            server = stack.enter_context(Emulator(
                state_path=state, job_seconds=seconds, flavor=p.type, azure_rules=True))
            local = replace(p, base_url=_base_url(p.type, server),
                            endpoint=server.url if p.type == "azure" else None,
                            api_key_env="FTOPS_EMULATOR_KEY", auth="key",
                            management_url=server.management_url if p.type == "azure" else None)
            client = providers.make_client(local, env={"FTOPS_EMULATOR_KEY": EMULATOR_KEY},
                                           max_retries=max_retries)
            manager = (providers.management(local, partial(_EmulatorCredential, server))
                       if providers.manages(local) else None)
            out[p.name] = providers.connection(p, client, manager)
        yield out


def _base_url(provider_type: str, server: Emulator) -> str | None:
    """Where the type's SDK is pointed: Together's and Fireworks' add their own paths to the
    root; OpenAI's and Nebius' (the openai SDK) take ``/v1``; Azure's takes an endpoint."""
    if provider_type == "azure":
        return None
    return server.url if provider_type in ("together", "fireworks") else server.base_url


class _EmulatorCredential:
    """Entra tokens from the embedded emulator's own token endpoint, for its management
    plane: azure-identity's credentials read their endpoint from the process environment,
    which ``--emulator`` leaves alone."""

    def __init__(self, server: Emulator) -> None:
        self._source = server.entra_environment()

    def get_token(self, *scopes: str, **_options: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        query = urlencode({"api-version": "2019-08-01", "resource": scopes[0]})
        request = Request(f"{self._source['IDENTITY_ENDPOINT']}?{query}",
                          headers={"X-IDENTITY-HEADER": self._source["IDENTITY_HEADER"]})
        # No proxy: the emulator listens on this machine.
        with build_opener(ProxyHandler({})).open(request, timeout=10) as answer:
            body = json.load(answer)
        return AccessToken(body["access_token"], int(body["expires_on"]))
