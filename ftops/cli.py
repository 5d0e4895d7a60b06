"""The command line: parse options, call one core function, map errors to exit codes."""

from __future__ import annotations

import sys
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
