"""What an analysis reports: findings on lines, token statistics and the whole-file report,
which round-trips through a dict for the cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ftops.errors import Diagnostic


@dataclass(frozen=True)
class Finding:
    """One error or warning on one line (1-based; 0 for the whole file)."""

    line: int
    code: str
    message: str


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
    billable_tokens: int  # sum over examples of min(token_limit, tokens); = total if no limit
    errors: tuple[Finding, ...]  # at most max_errors, in line order
    error_count: int  # all errors, counted
    warnings: tuple[Finding, ...]  # at most max_errors of each code, in line order
    warning_count: int = 0  # all warnings, counted
    encoding: str = "o200k_base"
    token_limit: int | None = None

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Errors then warnings as ``path:line: code: message`` diagnostics."""
        return tuple(
            Diagnostic(self.path, f.line or None, f"{f.code}: {f.message}", f.code)
            for f in self.errors + self.warnings
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetReport:
        return cls(
            **{
                **data,
                "tokens": TokenStats(**data["tokens"]),
                "errors": tuple(Finding(**f) for f in data["errors"]),
                "warnings": tuple(Finding(**f) for f in data["warnings"]),
            }
        )
