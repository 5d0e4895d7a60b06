"""The core of ``ftops validate``: specs, datasets, overlap and budgets checked in one pass.

``validate()`` never raises for a user mistake in a spec or dataset: every problem lands in the
returned :class:`ValidationReport`, which renders itself as text or as one JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftops import catalog, datasets, gitinfo, spec
from ftops.cost import format_usd, training_epochs
from ftops.datasets import DatasetReport
from ftops.errors import Diagnostic, FtopsError, UsageError

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
CACHE_DIR = ".ftops/cache"


@dataclass(frozen=True)
class ModelEstimate:
    name: str
    base: str
    n_epochs: int
    billable_tokens: int
    billed_tokens: int
    estimated_cost_usd: float | None
    max_cost_usd: float | None


@dataclass(frozen=True)
class DatasetResult:
    name: str
    path: str  # as shown to the user
    report: DatasetReport
    warnings: tuple[Diagnostic, ...]  # the report's own, then overlaps with a training set
    estimate: ModelEstimate | None  # only for a .jsonl validated alone (no spec, no model)


@dataclass(frozen=True)
class ValidationReport:
    errors: tuple[Diagnostic, ...]  # spec and budget problems; dataset errors stay per dataset
    datasets: tuple[DatasetResult, ...]
    models: tuple[ModelEstimate, ...]

    @property
    def ok(self) -> bool:
        return not self.errors and all(d.report.ok for d in self.datasets)

    def to_json(self) -> str:
        # A .jsonl validated alone is costed as if trained on --model, under its own path.
        alone = [d.estimate for d in self.datasets if d.estimate is not None and d.report.ok]
        data = {
            "ok": self.ok,
            "errors": [e.to_dict() for e in self.errors],
            "datasets": [_dataset_json(d) for d in self.datasets],
            "models": [
                {
                    "name": m.name,
                    "base": m.base,
                    "n_epochs": m.n_epochs,
                    "billed_tokens": m.billed_tokens,
                    "estimated_cost_usd": m.estimated_cost_usd,
                }
                for m in (*self.models, *alone)
            ],
        }
        return json.dumps(data, indent=2, ensure_ascii=False)

    def to_text(self) -> str:
        lines = [str(e) for e in self.errors]
        if lines:
            lines.append("")
        for result in self.datasets:
            lines += _dataset_text(result)
        for estimate in self.models:
            lines += _model_text(estimate)
        dataset_errors = sum(d.report.error_count for d in self.datasets)
        counts = f"{_count(len(self.datasets), 'dataset')}, {_count(len(self.models), 'model')}"
        if self.ok:
            lines.append(f"Valid: {counts}, no errors.")
        else:
            spec_errors = _count(len(self.errors), "spec error")
            lines.append(
                f"Invalid: {spec_errors}, {_count(dataset_errors, 'dataset error')} ({counts})."
            )
        return "\n".join(lines)


def validate(
    paths: Sequence[Path] = (),
    *,
    specs: Path = Path("specs"),
    fmt: str = "chat",
    model: str = DEFAULT_MODEL,
    max_errors: int = 50,
    cache_dir: Path | None = None,
) -> ValidationReport:
    """Validate ``.jsonl`` files alone and spec files/dirs (``specs`` when ``paths`` names none).

    A ``.jsonl`` file alone is read as ``fmt`` with the encoding and per-example token limit of
    ``model``. Analyses are cached under ``<repo root>/.ftops/cache`` unless ``cache_dir`` is given.
    """
    files = [p for p in paths if p.suffix == ".jsonl"]
    spec_paths = [p for p in paths if p.suffix != ".jsonl"] or ([] if files else [specs])
    errors: list[Diagnostic] = []
    results: list[DatasetResult] = []
    estimates: list[ModelEstimate] = []
    if files:
        results += _standalone(files, fmt, model, max_errors, cache_dir, errors)
    if spec_paths:
        loaded, problems = spec.collect_specs(spec_paths)
        errors += problems
        cache = cache_dir or loaded.root / CACHE_DIR
        checked, estimates = _check_spec(loaded, max_errors, cache, errors)
        results += checked
    return ValidationReport(tuple(errors), tuple(results), tuple(estimates))


def _standalone(
    files: list[Path],
    fmt: str,
    model: str,
    max_errors: int,
    cache_dir: Path | None,
    errors: list[Diagnostic],
) -> list[DatasetResult]:
    info = catalog.load().model(model)
    if info is None:
        known = ", ".join(m.id for m in catalog.load().models)
        raise UsageError(f"unknown model '{model}' for --model", hint=f"known: {known}")
    results = []
    for path in files:
        try:
            found = path.is_file()
        except OSError as exc:  # a name too long, say
            message = f"unusable path: {exc.strerror}"
            errors.append(_problem(str(path), None, message, "unreadable"))
            continue
        if not found:
            errors.append(_problem(str(path), None, "no such file", "file_not_found"))
            continue
        try:
            report = datasets.analyze(
                path,
                fmt=fmt,
                encoding=info.encoding,
                token_limit=info.example_token_limit,
                max_errors=max_errors,
                cache_dir=cache_dir or _repo_cache(path),
            )
        except FtopsError as exc:
            errors.append(_problem(str(path), None, str(exc), "unreadable"))
            continue
        epochs = datasets.default_epochs(report.examples)
        estimate = _estimate(str(path), info.id, epochs, report, info.training_usd_per_1m, None)
        results.append(DatasetResult(str(path), str(path), report, report.warnings, estimate))
    return results


def _repo_cache(path: Path) -> Path | None:
    """The cache of the repository holding ``path``; outside one, nothing is cached."""
    try:
        return gitinfo.repo_root(path.parent) / CACHE_DIR
    except FtopsError:
        return None


def _check_spec(
    loaded: spec.Spec, max_errors: int, cache: Path, errors: list[Diagnostic]
) -> tuple[list[DatasetResult], list[ModelEstimate]]:
    reports: dict[tuple[str, str, int | None], DatasetReport | None] = {}

    def analyze(dataset: spec.Dataset, encoding: str, limit: int | None) -> DatasetReport | None:
        key = (dataset.name, encoding, limit)
        if key not in reports:
            try:
                reports[key] = datasets.analyze(
                    dataset.path,
                    fmt=dataset.format,
                    encoding=encoding,
                    token_limit=limit,
                    max_errors=max_errors,
                    cache_dir=cache,
                )
            except FtopsError as exc:
                errors.append(_problem(dataset.file, dataset.line, str(exc), "unreadable"))
                reports[key] = None
        return reports[key]

    # A dataset is shown with the facts of the first model that trains or validates on it.
    facts: dict[str, tuple[str, int | None]] = {}
    for m in loaded.models:
        for name in (m.training, m.validation):
            if name is not None:
                facts.setdefault(name, (m.encoding, m.example_token_limit))

    shown = [(d, analyze(d, *facts.get(d.name, (spec.DEFAULT_ENCODING, None))))
             for d in loaded.datasets]
    # After the analyses: they leave the example digests of changed files in the cache, where
    # find_overlap reads them instead of parsing each file again.
    overlaps = _overlaps(loaded, cache, max_errors)
    results = []
    for dataset, report in shown:
        if report is not None:
            warnings = report.warnings + overlaps.get(dataset.name, ())
            results.append(DatasetResult(dataset.name, dataset.display, report, warnings, None))

    estimates = []
    for m in loaded.models:
        training = loaded.dataset(m.training)
        assert training is not None  # resolved models only name resolved datasets
        report = analyze(training, m.encoding, m.example_token_limit)
        if report is None:
            continue
        epochs = training_epochs(m.n_epochs, report.examples)
        estimate = _estimate(
            m.name, m.base_model, epochs, report, m.training_usd_per_1m, m.max_cost_usd
        )
        estimates.append(estimate)
        errors += _budget(m, estimate)
    return results, estimates


def _overlaps(
    loaded: spec.Spec, cache: Path, max_findings: int
) -> dict[str, tuple[Diagnostic, ...]]:
    """Warnings for held-out data (validation or eval sets) that repeats training examples;
    past ``max_findings`` per pair, one more line says how many were left out."""
    pairs: list[tuple[str, str]] = []
    for m in loaded.models:
        held_out = [m.validation]
        held_out += [e.dataset for e in loaded.evals if e.name == m.eval]
        pairs += [(m.training, name) for name in held_out if name is not None]
    found: dict[str, tuple[Diagnostic, ...]] = {}
    for train_name, held_name in sorted(set(pairs)):
        train, held = loaded.dataset(train_name), loaded.dataset(held_name)
        if train is None or held is None or train.format != held.format:
            continue
        findings = datasets.find_overlap(
            train.path, held.path, fmt=train.format, cache_dir=cache, max_findings=max_findings
        )
        found[held_name] = found.get(held_name, ()) + findings
    return found


def _estimate(
    name: str,
    base: str,
    epochs: int,
    report: DatasetReport,
    usd_per_1m: float | None,
    max_cost_usd: float | None,
) -> ModelEstimate:
    billed = datasets.billed_tokens(report.billable_tokens, epochs)
    cost = datasets.estimate_cost_usd(billed, usd_per_1m)
    return ModelEstimate(name, base, epochs, report.billable_tokens, billed, cost, max_cost_usd)


def _budget(m: spec.ResolvedModel, estimate: ModelEstimate) -> list[Diagnostic]:
    if m.max_cost_usd is None:
        return []
    line = m.line_of("max_cost_usd")
    where = f"models.{m.name}.max_cost_usd"
    if estimate.estimated_cost_usd is None:
        message = (
            f"{where}: no training price is known for {m.base_model}, so the budget cannot be "
            f"checked; add `pricing: {{{m.base_model}: {{training_usd_per_1m: ...}}}}`"
        )
        return [_problem(m.file, line, message, "no_price")]
    if estimate.estimated_cost_usd > m.max_cost_usd:
        message = (
            f"{where}: estimated cost {_usd(estimate.estimated_cost_usd)} exceeds the budget "
            f"{_usd(m.max_cost_usd)} ({estimate.n_epochs} epochs x "
            f"{estimate.billable_tokens:,} tokens)"
        )
        return [_problem(m.file, line, message, "budget_exceeded")]
    return []


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _usd(value: float) -> str:
    return format_usd(value)


def _problem(path: str, line: int | None, message: str, code: str) -> Diagnostic:
    """A spec-level error (a file, a budget): listed with the spec problems, never per dataset."""
    return Diagnostic("error", code, message, path=path, line=line)


def _findings_json(findings: Sequence[Diagnostic]) -> list[dict[str, Any]]:
    return [f.to_dict() for f in findings]


def _dataset_json(result: DatasetResult) -> dict[str, Any]:
    report = result.report
    return {
        "name": result.name,
        "path": result.path,
        "sha256": report.sha256,
        "format": report.format,
        "examples": report.examples,
        "tokens": {
            "total": report.tokens.total,
            "min": report.tokens.min,
            "max": report.tokens.max,
            "mean": report.tokens.mean,
        },
        "errors": _findings_json(report.errors),
        "error_count": report.error_count,
        "warnings": _findings_json(result.warnings),
    }


def _finding_text(path: str, finding: Diagnostic) -> str:
    where = f"{path}:{finding.line}" if finding.line else path
    return f"    {where}: {finding.code}: {finding.message}"


def _dataset_text(result: DatasetResult) -> list[str]:
    report, tokens = result.report, result.report.tokens
    title = result.path if result.name == result.path else f"{result.name}: {result.path}"
    lines = [
        f"dataset {title} ({report.format})",
        f"  {report.examples} examples, {report.size:,} bytes, sha256 {report.sha256[:12]}",
        f"  tokens: min {tokens.min:,}, mean {tokens.mean:,.1f}, max {tokens.max:,}, "
        f"total {tokens.total:,}",
    ]
    if result.estimate is not None and report.ok:
        lines.append(f"  on {result.estimate.base}:{_model_text(result.estimate)[1][1:]}")
    lines.append(f"  errors: {report.error_count}" if report.error_count else "  errors: none")
    lines += [_finding_text(result.path, f) for f in report.errors]
    hidden = report.error_count - len(report.errors)
    if hidden > 0:
        lines.append(f"    ... and {hidden} more (raise --max-errors to see them)")
    if result.warnings:
        lines.append(f"  warnings: {len(result.warnings)}")
        lines += [_finding_text(result.path, f) for f in result.warnings]
    return [*lines, _assistant_text(report)]


def _assistant_text(report: DatasetReport) -> str:
    """What the cookbook's data-prep notebook reports besides the tokens (after the findings:
    the lines before them are read by position)."""
    stats = report.assistant_tokens
    return (f"  assistant tokens: min {stats.min:,}, mean {stats.mean:,.1f}, max {stats.max:,}, "
            f"total {stats.total:,}; no system message: {report.missing_system}, no user "
            f"message: {report.missing_user}")


def _model_text(estimate: ModelEstimate) -> list[str]:
    cost = "unknown (no price for this base model)"
    if estimate.estimated_cost_usd is not None:
        cost = _usd(estimate.estimated_cost_usd)
    if estimate.max_cost_usd is not None:
        cost += f" (budget {_usd(estimate.max_cost_usd)})"
    lines = [
        f"model {estimate.name} (base {estimate.base})",
        f"  {estimate.n_epochs} epochs x {estimate.billable_tokens:,} billable tokens = "
        f"{estimate.billed_tokens:,} billed tokens, estimated cost {cost}",
    ]
    if catalog.approximated(estimate.base):  # no offline tokenizer of its own
        lines.append(f"  token counts are an estimate: {estimate.base} is counted with "
                     "another model's tokenizer")
    return lines
