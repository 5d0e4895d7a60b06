"""The user-facing error types (what went wrong, where, and what to do next), and the one
``Diagnostic`` that spec problems, dataset findings and plan notices all are."""

from __future__ import annotations

import difflib
import enum
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Literal

_API_KEY = re.compile(r"\bsk-[A-Za-z0-9_*\-]{6,}")
# The same rule as ftops.github.context's: variables named like credentials, long enough to be one.
_SECRET_NAME = re.compile(r"(^|_)(TOKEN|API_KEY|SECRET|PASSWORD)$")
_MIN_ENV_SECRET = 8  # shorter values (flags like "true") are not treated as secrets

Severity = Literal["error", "warning"]
# Which view a diagnostic belongs to, read off the fields it has (see ``Diagnostic.form``).
Form = Literal["plan", "spec", "dataset"]


class ExitCode(enum.IntEnum):
    """What ``ftops`` exit codes mean; each means one thing, so scripts can branch on them."""

    OK = 0
    ERROR = 1  # anything the user can act on: FtopsError, API error, usage error, bad path
    CHANGES = 2  # only `plan --detailed-exitcode`: changes are pending (as in Terraform)
    UNEXPECTED = 3  # a bug in ftops: one line on stderr, the traceback in a log file
    INTERRUPTED = 130  # Ctrl+C, as a shell reports SIGINT (128 + 2)


@dataclass(frozen=True)
class Place:
    """Where in the specs one subject of a grouped diagnostic is declared."""

    subject: str
    path: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where} ({self.subject})" if where else self.subject

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "path": self.path, "line": self.line}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Place:
        return cls(subject=raw["subject"], path=raw["path"], line=raw["line"])


@dataclass(frozen=True)
class Diagnostic:
    """One problem, collected with others and reported together. Three views use it, each
    telling its own by the fields it sets (``form``):

    - a spec problem has a ``path`` (and a line where known): ``path:line: message``;
    - a dataset finding has only a ``line`` (1-based, 0 for the whole file), because the
      report it sits in knows the path: ``line 3: code: message``;
    - a plan notice is about a ``subject`` (an address such as ``model.bot``), and one about
      many models at once (a provider's cut-off) lists where each is declared in ``places``:
      ``subject: message``.

    ``to_dict`` writes the JSON each view has always written, without ``severity``: that
    follows from the list a diagnostic sits in, so ``from_dict`` is told it.
    """

    severity: Severity
    code: str
    message: str
    # Keyword-only: which of these are set decides the form, so a call site names them.
    _: KW_ONLY
    path: str | None = None
    line: int | None = None
    hint: str | None = None
    subject: str | None = None
    places: tuple[Place, ...] = ()

    @property
    def form(self) -> Form:
        if self.subject is not None:
            return "plan"
        return "spec" if self.path is not None else "dataset"

    def __str__(self) -> str:
        form = self.form
        if form == "plan":
            text = f"{self.subject}: {self.message}"
        elif form == "spec":
            where = f"{self.path}:{self.line}" if self.line is not None else self.path
            text = f"{where}: {self.message}"
        else:
            text = f"{self.code}: {self.message}"
            text = f"line {self.line}: {text}" if self.line else text
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        """The JSON of this diagnostic's view: ``plan --json`` for a notice, ``validate
        --json`` (and the analysis cache) for a spec problem or a dataset finding."""
        form = self.form
        if form == "plan":
            out: dict[str, Any] = {"code": self.code, "subject": self.subject,
                                   "message": self.message}
            if self.places:  # only grouped notices carry the key: plans stay as they were
                out["places"] = [p.to_dict() for p in self.places]
            return out
        if form == "spec":
            return {"file": self.path, "line": self.line, "code": self.code,
                    "message": self.message}
        return {"line": self.line, "code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, severity: Severity) -> Diagnostic:
        """Reads what ``to_dict`` wrote; the form is told by the keys."""
        if "subject" in raw:
            places = tuple(Place.from_dict(p) for p in raw.get("places", ()))
            return cls(severity, raw["code"], raw["message"], subject=raw["subject"],
                       places=places)
        if "file" in raw:
            return cls(severity, raw["code"], raw["message"], path=raw["file"],
                       line=raw["line"])
        return cls(severity, raw["code"], raw["message"], line=raw["line"])


class FtopsError(Exception):
    """An error the user can act on. ``str()`` is one line; the CLI prints it and exits with
    ``exit_code``. Raise the subclass of its kind, so callers and tests can tell them apart."""

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


class SpecError(FtopsError):
    """The specs are invalid; ``diagnostics`` holds every problem found, the first one the
    message (the handler prints the rest, one per line)."""

    exit_code: ClassVar[int] = ExitCode.ERROR


class DataError(FtopsError):
    """A dataset cannot be used: unreadable, or with errors in its examples."""

    exit_code: ClassVar[int] = ExitCode.ERROR


class RemoteError(FtopsError):
    """A provider or the GitHub API failed, or answered what ftops cannot use."""

    exit_code: ClassVar[int] = ExitCode.ERROR


class StalePlanError(FtopsError):
    """A plan (saved, or reviewed in a pull request) no longer matches the account, the specs
    or the data: applying it would do something nobody reviewed."""

    exit_code: ClassVar[int] = ExitCode.ERROR


class UsageError(FtopsError):
    """Bad arguments, flags or values, caught by ftops rather than by click's parser."""

    exit_code: ClassVar[int] = ExitCode.ERROR


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
