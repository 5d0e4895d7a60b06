"""The one user-facing error type: what went wrong, where, and what to do next."""

from __future__ import annotations

import difflib
import enum
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

_API_KEY = re.compile(r"\bsk-[A-Za-z0-9_*\-]{6,}")
# The same rule as ftops.github.context's: variables named like credentials, long enough to be one.
_SECRET_NAME = re.compile(r"(^|_)(TOKEN|API_KEY|SECRET|PASSWORD)$")
_MIN_ENV_SECRET = 8  # shorter values (flags like "true") are not treated as secrets


class ExitCode(enum.IntEnum):
    """What ``ftops`` exit codes mean; each means one thing, so scripts can branch on them."""

    OK = 0
    ERROR = 1  # anything the user can act on: FtopsError, API error, usage error, bad path
    CHANGES = 2  # only `plan --detailed-exitcode`: changes are pending (as in Terraform)
    UNEXPECTED = 3  # a bug in ftops: one line on stderr, the traceback in a log file
    INTERRUPTED = 130  # Ctrl+C, as a shell reports SIGINT (128 + 2)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a file; many are collected and reported together."""

    path: str
    line: int | None
    message: str
    code: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class FtopsError(Exception):
    """An error the user can act on. ``str()`` is one line; the CLI prints it and exits 1."""

    exit_code: ClassVar[int] = ExitCode.ERROR

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        diagnostics: tuple[Diagnostic, ...] = (),
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.hint = hint
        self.diagnostics = diagnostics
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.message
        if self.path:
            where = f"{self.path}:{self.line}" if self.line is not None else self.path
            text = f"{where}: {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each known secret, and anything shaped like an API key, masked."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _API_KEY.sub("sk-***", text)


def env_secrets(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of environment variables named like credentials (``*_API_KEY``, ``*_TOKEN``,
    ...), for ``redact``: output that may quote them (a crash message) must not show them."""
    env = os.environ if env is None else env
    return tuple(sorted(
        value for name, value in env.items()
        if _SECRET_NAME.search(name.upper().replace("-", "_")) and len(value) >= _MIN_ENV_SECRET
    ))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` with the choice closest to a mistyped ``word``, to append to a
    message; "" when none is close. Ties go the same way whatever the order of ``choices``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
