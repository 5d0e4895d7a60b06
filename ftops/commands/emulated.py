"""``--emulator``: every provider on an in-process emulator of its own dialect, its account
kept under the repository's ``.ftops/emulator/``. Only the command floor imports this module:
the provider layer never starts servers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ftops import providers
from ftops.providers import Connection
from ftops.spec import Provider
from ftops.state import DEFAULT_PROVIDER

EMULATOR_KEY = "sk-emulator"  # the embedded emulator accepts any key; this one is not secret


def emulator_state(root: Path, name: str) -> Path:
    """Where ``--emulator`` keeps a provider's account; ``openai`` keeps its historical file."""
    folder = root / ".ftops" / "emulator"
    return folder / ("state.json" if name == DEFAULT_PROVIDER else f"state-{name}.json")


@contextmanager
def connections(declared: Iterable[Provider], names: Iterable[str], *,
                emulator_root: Path | None = None, job_seconds: float = 3.0,
                max_retries: int = 2) -> Iterator[dict[str, Connection]]:
    """A connection per named provider: the real endpoint, or with ``emulator_root`` an
    in-process emulator each (Azure's dialect for ``type: azure``)."""
    if emulator_root is None:
        with providers.connections(declared, names, max_retries=max_retries) as real:
            yield real
        return
    from ftops.emulator import Emulator  # only the --emulator path needs the server

    by_name = {p.name: p for p in declared}
    with ExitStack() as stack:
        out: dict[str, Connection] = {}
        for p in (by_name[name] for name in sorted(set(names))):
            state = emulator_state(emulator_root, p.name)
            state.parent.mkdir(parents=True, exist_ok=True)
            server = stack.enter_context(Emulator(
                state_path=state, job_seconds=job_seconds,
                flavor="azure" if p.type == "azure" else "openai", azure_rules=True))
            local = Provider(p.name, p.type, None if p.type == "azure" else server.base_url,
                             server.url if p.type == "azure" else None, p.api_version,
                             "FTOPS_EMULATOR_KEY", p.file, p.line)
            client = providers.make_client(local, env={"FTOPS_EMULATOR_KEY": EMULATOR_KEY},
                                           max_retries=max_retries)
            out[p.name] = providers.connection(p, client)
        yield out
