"""What an analysis reports: findings on lines (``Diagnostic``s of the dataset form: a line,
0 for the whole file, and no path), token statistics and the whole-file report, which
round-trips through a dict for the cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from ftops.errors import Diagnostic


@dataclass(frozen=True)
class TokenStats:
    """Tokens per example, over the ``counted`` examples that have no errors."""

    total: int
    min: int
    max: int
    mean: float
    counted: int = 0


@dataclass(frozen=True)
class DatasetReport:
    path: str
    format: str
    sha256: str
    size: int
    examples: int
    tokens: TokenStats
    assistant_tokens: TokenStats  # of assistant messages' text, over the same examples
    billable_tokens: int  # sum over examples of min(token_limit, tokens); = total if no limit
    missing_system: int  # of those examples, how many have no system message
    missing_user: int  # and no user message
    errors: tuple[Diagnostic, ...]  # at most max_errors, in line order
    error_count: int  # all errors, counted
    warnings: tuple[Diagnostic, ...]  # at most max_errors of each code, in line order
    warning_count: int = 0  # all warnings, counted
    encoding: str = "o200k_base"
    token_limit: int | None = None

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Errors then warnings, placed in this file: ``path:line: code: message``."""
        return tuple(
            replace(f, path=self.path, line=f.line or None, message=f"{f.code}: {f.message}")
            for f in self.errors + self.warnings
        )

    def to_dict(self) -> dict[str, Any]:
        # Findings in the shape the cache has always held ({line, code, message}): cached
        # analyses stay valid, and severity is implied by the list.
        return {**asdict(self), "errors": [f.to_dict() for f in self.errors],
                "warnings": [f.to_dict() for f in self.warnings]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetReport:
        return cls(
            **{
                **data,
                "tokens": TokenStats(**data["tokens"]),
                "assistant_tokens": TokenStats(**data["assistant_tokens"]),
                "errors": tuple(Diagnostic.from_dict(f, severity="error")
                                for f in data["errors"]),
                "warnings": tuple(Diagnostic.from_dict(f, severity="warning")
                                  for f in data["warnings"]),
            }
        )
