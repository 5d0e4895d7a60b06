"""The one error handler of the command line: every failure becomes a short message on
stderr and an exit code that means one thing (see ``ExitCode``), never a traceback on the
terminal; an unexpected one leaves its traceback in a log file for the bug report."""

from __future__ import annotations

import atexit
import datetime as dt
import errno
import gc
import os
import sys
import tempfile
import traceback
from pathlib import Path

import click

from ftops import __version__
from ftops.errors import ExitCode, FtopsError, env_secrets, redact
from ftops.stop import Interrupted

LOG_DIR = Path(".ftops") / "logs"  # relative: crash logs go to the directory ftops ran in

# At exit Python collects, object by object, the thousands of classes the SDK defines at import:
# 0.2-0.3 s of every command, at the end. Frozen first, that collection passes them by; atexit
# handlers, flushing and closing still run, and the memory goes with the process. (Python never
# promised ``__del__`` for what still lives at exit, so nothing is lost that was kept.)
atexit.register(gc.freeze)


def report(exc: BaseException) -> int:
    """Shows ``exc`` on stderr as the user should see it; returns the exit code it maps to."""
    if isinstance(exc, FtopsError):
        click.echo(f"Error: {exc}", err=True)
        for diagnostic in exc.diagnostics[1:]:  # all spec problems, one per line
            click.echo(f"Error: {diagnostic}", err=True)
        return exc.exit_code
    # The SDK takes 0.7 s to import: an API error can only come from a command that loaded it.
    sdk = sys.modules.get("openai")
    if sdk is not None and isinstance(exc, sdk.APIError):
        from ftops.providers import api_error_message  # lazily: the SDK is slow to import

        click.echo(f"Error: {api_error_message(exc)}", err=True)
        return ExitCode.ERROR
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.ClickException):  # usage errors, bad values, missing files
        exc.show()  # click's own text: usage, the --help hint, one "Error: ..." line
        return ExitCode.ERROR
    # A stop asked by SIGINT or SIGTERM (ftops.stop); click turns it into Abort, its cause.
    stopped = exc.__cause__ if isinstance(exc, click.Abort) else exc
    if isinstance(stopped, Interrupted):
        click.echo(f"Stopped by {stopped.signal_name}.", err=True)
        if stopped.hint:
            click.echo(stopped.hint, err=True)
        return stopped.exit_code  # 130, or 143 for SIGTERM: as a shell reports 128 + signal
    if isinstance(exc, (click.Abort, KeyboardInterrupt)):  # Ctrl+C, also at a prompt
        click.echo("Interrupted.", err=True)
        return ExitCode.INTERRUPTED
    if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
        _silence_stdout()  # the reader went away (`ftops plan | head`): nobody to tell
        return ExitCode.ERROR
    if isinstance(exc, OSError) and exc.filename is not None:
        click.echo(f"Error: {exc.filename}: {exc.strerror or exc}", err=True)
        return ExitCode.ERROR
    return _report_unexpected(exc)


def _report_unexpected(exc: BaseException) -> int:
    """A bug: one line on stderr, the traceback in a log file for the bug report."""
    secrets = env_secrets()
    # Masked in the log too: it is meant to be attached to a bug report.
    where = _write_log(redact(_log_text(exc), secrets))
    message = " ".join(str(exc).split())  # one line, whatever the exception says
    saved = f"traceback in {where}" if where else "traceback could not be saved"
    line = f"Error: unexpected {type(exc).__name__}{': ' if message else ''}{message} ({saved})"
    click.echo(redact(line, secrets), err=True)
    return ExitCode.UNEXPECTED


def _log_text(exc: BaseException) -> str:
    header = (f"ftops {__version__}, Python {sys.version.split()[0]}, "
              f"{dt.datetime.now(dt.timezone.utc).isoformat()}\nargv: {sys.argv!r}\n\n")
    return header + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _write_log(text: str) -> Path | None:
    """Writes ``text`` to .ftops/logs/ftops-<timestamp>.log here, or to the system temp dir
    when that cannot be written (read-only checkout, .ftops a file); None if neither can."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    for folder in (LOG_DIR, Path(tempfile.gettempdir())):
        path = folder / f"ftops-{stamp}.log"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        return path.resolve()
    return None


def _silence_stdout() -> None:
    """Points stdout at /dev/null so Python's final flush does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. click's CliRunner)
        pass
