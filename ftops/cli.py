"""The command line: parse options, call one core function, map errors to exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ftops import __version__
from ftops.errors import FtopsError


class _Group(click.Group):
    """Turns every FtopsError into one line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FtopsError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ftops")
def main() -> None:
    """GitOps for OpenAI fine-tuning: validate, plan and apply fine-tuning specs kept in git."""


@main.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--specs",
    "specs_dir",
    default="specs",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Spec directory or file, used when no PATH names one.",
)
@click.option(
    "--format",
    "fmt",
    default="chat",
    show_default=True,
    type=click.Choice(["chat", "preference", "reinforcement"]),
    help="Format of .jsonl files given as PATH.",
)
@click.option(
    "--model",
    default="gpt-4o-mini-2024-07-18",
    show_default=True,
    help="Base model whose encoding, token limit and price apply to .jsonl files given as PATH.",
)
@click.option(
    "--max-errors",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Errors listed per dataset.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def validate_command(
    paths: tuple[Path, ...], specs_dir: Path, fmt: str, model: str, max_errors: int, as_json: bool
) -> None:
    """Check specs and datasets: every problem with file:line, token counts, cost, budgets.

    Each PATH is a .jsonl dataset (checked alone) or a spec file or directory.
    """
    from ftops.validate import validate

    report = validate(paths, specs=specs_dir, fmt=fmt, model=model, max_errors=max_errors)
    click.echo(report.to_json() if as_json else report.to_text())
    sys.exit(0 if report.ok else 1)


@main.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of spec files (for editors: see schema/ftops.schema.json)."""
    from ftops.spec import schema_text

    click.echo(schema_text(), nl=False)


@main.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the account's state in this file (and blobs beside it) across restarts.")
@click.option("--job-seconds", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds from job creation to its terminal state (0: on the next read).")
@click.option("--fault-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of API requests that fail with an injected fault.")
@click.option("--faults", default="429,500,503,drop,500-after-create", show_default=True,
              help="Comma-separated fault modes to draw from.")
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Delay added to every API request.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed for ids and faults: the same requests see the same faults.")
def emulator_command(host: str, port: int, state_path: Path | None, job_seconds: float,
                     fault_rate: float, faults: str, latency_ms: float, seed: int) -> None:
    """Serve an OpenAI-compatible fine-tuning API locally until interrupted."""
    from ftops.emulator import Emulator
    from ftops.emulator.faults import parse_modes

    server = Emulator(host=host, port=port, state_path=state_path, job_seconds=job_seconds,
                      fault_rate=fault_rate, faults=parse_modes(faults), latency_ms=latency_ms,
                      seed=seed).listen()
    click.echo(f"ftops emulator serving {server.base_url} "
               f"(state: {state_path or 'in memory'}; any API key is accepted). Ctrl+C stops it.")
    server.serve_forever()
    click.echo("ftops emulator stopped.")


@main.command("demo")
@click.option("--job-seconds", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="How long the demo's fine-tuning job takes on the emulator.")
def demo_command(job_seconds: float) -> None:
    """Try ftops with no API key: train on a bundled sample using the embedded emulator."""
    from ftops.demo import run

    run(click.echo, job_seconds=job_seconds)
