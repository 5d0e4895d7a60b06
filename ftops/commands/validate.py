"""``ftops validate``: specs and datasets checked offline, every problem with file:line, token
counts and cost. No request is made; neither the SDK nor git is imported (pre-commit runs it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ftops.validate import ValidationReport, validate


@dataclass(frozen=True)
class ValidateOptions:
    paths: tuple[Path, ...] = ()  # .jsonl datasets (checked alone), spec files or directories
    specs: Path = Path("specs")  # used when no path names a spec
    fmt: str = "chat"  # the format of .jsonl paths
    model: str = "gpt-4o-mini-2024-07-18"  # whose encoding, limit and price apply to them
    max_errors: int = 50


def run(options: ValidateOptions) -> ValidationReport:
    return validate(options.paths, specs=options.specs, fmt=options.fmt, model=options.model,
                    max_errors=options.max_errors)
