"""The one user-facing error type: what went wrong, where, and what to do next."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_API_KEY = re.compile(r"\bsk-[A-Za-z0-9_*\-]{6,}")


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
