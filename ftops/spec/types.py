"""The resolved view of the specs (public): frozen dataclasses with every reference resolved.

Kept apart from the pydantic models so that the rest of ftops never depends on how a file is
validated, only on what it resolved to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ftops.state import ResolvedModel as ResolvedModel  # the one model type, read from specs


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path  # absolute
    display: str  # as the user would write it, relative to the given spec path
    format: str
    file: str
    line: int


@dataclass(frozen=True)
class Eval:
    name: str
    dataset: str
    checks: tuple[str, ...]
    compare_with: str  # "base", "none" or a models entry
    min_score: float | None
    file: str
    line: int
    min_improvement: float | None = None
    schemas: dict[str, Path] = field(default_factory=dict)  # json_schema check -> absolute path


@dataclass(frozen=True)
class Provider:
    name: str
    type: str
    base_url: str | None
    endpoint: str | None
    api_version: str | None
    api_key_env: str | None
    file: str | None  # None for the implicit default provider
    line: int | None
    organization: str | None = None
    project: str | None = None
    # azure only: Entra ID or a key; where jobs run; where deployments are managed.
    auth: str = "key"
    training_type: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    account: str | None = None
    management_url: str | None = None


@dataclass(frozen=True)
class Spec:
    root: Path  # the repository root dataset paths must stay inside
    files: tuple[str, ...]
    datasets: tuple[Dataset, ...]
    models: tuple[ResolvedModel, ...]  # parents before children, else by name
    evals: tuple[Eval, ...]
    providers: tuple[Provider, ...]

    def model(self, name: str) -> ResolvedModel | None:
        return next((m for m in self.models if m.name == name), None)

    def dataset(self, name: str) -> Dataset | None:
        return next((d for d in self.datasets if d.name == name), None)


def dump_spec_yaml(data: dict[str, Any], header: str) -> str:
    """A spec file as ftops writes one (import, export): ``header`` comments, then the
    entries in the order given, so the file reads like a hand-written spec."""
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
