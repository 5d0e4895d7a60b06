"""Resolving the sections models refer to (datasets, providers, evals) and checking references.

The base of ``_Resolver``: it holds what resolved so far, which the models are resolved against.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ftops import catalog
from ftops.errors import did_you_mean
from ftops.spec.reader import _Entry, _Problems
from ftops.spec.schema import _SINGULAR, DEFAULT_PROVIDER, _Eval, _Provider
from ftops.spec.types import Dataset, Eval, Provider

OPEN_WEIGHT = ("nebius", "together", "fireworks")
# Keys only a provider of type azure takes (and account, fireworks too).
AZURE_ONLY = ("auth", "training_type", "subscription", "resource_group", "account",
              "management_url")


class _SectionResolver:
    """Resolves datasets, providers and evals entry by entry, reporting what is wrong with each."""

    def __init__(
        self, root: Path, named: dict[str, dict[str, _Entry]], problems: _Problems
    ) -> None:
        self.root = root
        self.named = named
        self.problems = problems
        self.datasets: dict[str, Dataset] = {}
        self.evals: dict[str, Eval] = {}
        self.providers: dict[str, Provider] = {}
        self.prices: dict[str, float] = {}

    def valid(self, section: str) -> Iterator[_Entry]:
        for name in sorted(self.named[section]):
            entry = self.named[section][name]
            if entry.value is not None:
                yield entry

    # -- references

    def ref(self, entry: _Entry, loc: tuple[str, ...], section: str, name: str) -> _Entry | None:
        """The entry ``name`` refers to; reports it when undefined. None also when it is invalid."""
        target = self.named[section].get(name)
        if target is None:
            if not (section == "providers" and name == DEFAULT_PROVIDER):
                hint = did_you_mean(name, self.named[section])
                self.problems.at(
                    entry,
                    loc,
                    f"no {_SINGULAR[section]} named '{name}'{hint}",
                    "undefined_reference",
                )
            return None
        return target if target.value is not None else None

    def canonical(self, model_id: str) -> str:
        alias = self.named["base_models"].get(model_id)
        if alias is not None and alias.value is not None:
            model_id = alias.value
        info = catalog.load().model(model_id)
        return info.id if info else model_id

    # -- sections

    def dataset(self, entry: _Entry) -> None:
        raw: str = entry.value.path
        if os.path.isabs(raw):
            self.problems.at(entry, ("path",), "must be relative to the spec file", "invalid_path")
            return
        try:
            full = (entry.path.parent / raw).resolve()
            is_file = full.is_file()
        except (OSError, ValueError, RuntimeError) as exc:  # too long, NUL byte, symlink loop
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.problems.at(entry, ("path",), f"unusable path: {reason}", "invalid_path")
            return
        if not full.is_relative_to(self.root.resolve()):
            self.problems.at(
                entry,
                ("path",),
                f"'{raw}' leaves the repository root {self.root}",
                "path_outside_repo",
            )
            return
        display = os.path.normpath(os.path.join(os.path.dirname(entry.file), raw))
        if not is_file:
            self.problems.at(entry, ("path",), f"no such file: {display}", "file_not_found")
            return
        if not entry.broken:
            self.datasets[entry.name] = Dataset(
                entry.name, full, display, entry.value.format, entry.file, entry.line
            )

    def provider(self, entry: _Entry) -> None:
        value: _Provider = entry.value
        azure, fireworks = value.type == "azure", value.type == "fireworks"
        wrong = (["base_url", "organization", "project"] if azure
                 else ["endpoint", "api_version", *AZURE_ONLY])
        if value.type in OPEN_WEIGHT:  # their own API: no OpenAI organization or project
            wrong += ["organization", "project"]
        if fireworks:
            wrong.remove("account")
        needed = ["endpoint"] if azure else ["account"] if fireworks else []
        ok = not entry.broken
        for key in wrong:
            if key in value.model_fields_set:
                self.problems.at(
                    entry, (key,), f"not used by providers of type {value.type}", "invalid_value"
                )
                ok = False
        for key in needed:
            if getattr(value, key) is None:
                self.problems.at(
                    entry, (), f"missing required key '{key}' (type {value.type})", "missing_key"
                )
                ok = False
        if ok:
            self.providers[entry.name] = Provider(
                entry.name,
                value.type,
                value.base_url,
                value.endpoint,
                value.api_version,
                value.api_key_env,
                entry.file,
                entry.line,
                value.organization,
                value.project,
                value.auth,
                value.training_type,
                value.subscription,
                value.resource_group,
                value.account,
                value.management_url,
            )

    def eval(self, entry: _Entry) -> None:
        value: _Eval = entry.value
        target = self.ref(entry, ("dataset",), "datasets", value.dataset)
        dataset = self.datasets.get(value.dataset) if target else None
        if dataset is None:
            return
        if dataset.format != "chat":
            self.problems.at(
                entry,
                ("dataset",),
                f"dataset '{dataset.name}' has format {dataset.format}; evals need a chat dataset",
                "format_mismatch",
            )
        elif not entry.broken:
            self.evals[entry.name] = Eval(
                entry.name,
                value.dataset,
                tuple(value.checks),
                value.compare_with,
                value.min_score,
                entry.file,
                entry.line,
                value.min_improvement,
                self.eval_schemas(entry),
            )
        if value.compare_with not in ("base", "none"):
            self.ref(entry, ("compare_with",), "models", value.compare_with)
        elif value.compare_with == "none" and value.min_improvement is not None:
            self.problems.at(
                entry,
                ("min_improvement",),
                "needs a comparison: compare_with is none",
                "invalid_value",
            )

    def eval_schemas(self, entry: _Entry) -> dict[str, Path]:
        """Checks a regex that compiles and a JSON Schema file inside the repository; returns each
        json_schema check's file."""
        schemas: dict[str, Path] = {}
        for index, check in enumerate(entry.value.checks):
            kind, _, arg = check.partition(":")
            if kind == "regex":
                try:
                    re.compile(arg)
                except re.error as exc:
                    self.problems.at(entry, ("checks", index), f"bad regex: {exc}", "invalid_value")
            elif kind == "json_schema":
                full = (entry.path.parent / arg).resolve()
                if not full.is_relative_to(self.root.resolve()) or not full.is_file():
                    self.problems.at(
                        entry,
                        ("checks", index),
                        f"no such file in the repository: {arg}",
                        "file_not_found",
                    )
                    continue
                try:
                    json.loads(full.read_text(encoding="utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    self.problems.at(
                        entry, ("checks", index), f"{arg} is not JSON: {exc}", "invalid_value"
                    )
                    continue
                schemas[check] = full
        return schemas
