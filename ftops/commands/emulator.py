"""``ftops emulator``: serve the emulator on this machine until interrupted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmulatorOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    state_path: Path | None = None
    job_seconds: float = 5.0
    fault_rate: float = 0.0
    faults: str = "429,500,503,drop,500-after-create"
    retry_after: float = 1.0
    latency_ms: float = 0.0
    seed: int = 0
    flavor: str = "openai"
    metadata_filter: bool = True
    log_size: int = 10_000  # requests kept by /_emulator/requests
    drop_metadata: bool = False


def _env(variables: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in variables.items())


def run(options: EmulatorOptions, echo: Callable[[str], None] = print) -> None:
    """Listens, says where, serves until Ctrl+C (or SIGTERM), then says it stopped."""
    from ftops.emulator import Emulator  # the server is only needed here
    from ftops.emulator.faults import parse_modes

    server = Emulator(host=options.host, port=options.port, state_path=options.state_path,
                      job_seconds=options.job_seconds, fault_rate=options.fault_rate,
                      faults=parse_modes(options.faults), latency_ms=options.latency_ms,
                      seed=options.seed, flavor=options.flavor, retry_after=options.retry_after,
                      metadata_filter=options.metadata_filter,
                      log_size=options.log_size, drop_metadata=options.drop_metadata,
                      azure_rules=True).listen()
    where = (f"Azure OpenAI at azure_endpoint {server.azure_endpoint} (any api-version; "
             f"v1 API at {server.azure_v1_url}, management plane at {server.management_url}, "
             f"Entra tokens with {_env(server.entra_environment())})"
             if options.flavor == "azure" else server.base_url)
    server.serve_forever(ready=lambda: echo(
        f"ftops emulator serving {where} (state: {options.state_path or 'in memory'}; any API "
        "key is accepted). Ctrl+C stops it."))
    echo("ftops emulator stopped.")
