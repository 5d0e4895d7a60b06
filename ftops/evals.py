"""Eval gates: a trained model answers its eval's held-out prompts through Chat Completions, is
scored by the eval's checks against the reference replies and compared with its base (or another
declared model); only a model whose gate passes is promoted to its alias in ``ftops.lock``.

Replies are cached under ``.ftops/evals/`` by (provider, model id, eval dataset sha256, request
settings): a fine-tuned model id names fixed weights and requests use temperature 0 and a fixed
seed, so a re-run sends no request. Checks are applied to the cached replies on every run, so
changing only the checks re-scores without a request either.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from ftops import catalog, engine, lock
from ftops.errors import FtopsError
from ftops.remote import ChatReply, Remote
from ftops.spec import Eval, ResolvedModel

Report = Callable[[str], None]
SEED = 0
# One request per example: ride out more transient faults (429/5xx/drops) than a plan needs to.
RETRIES = 6
CACHE_VERSION = 1
CACHE_DIR = Path(".ftops") / "evals"
DISAGREEMENTS = 3
_EPSILON = 1e-9  # scores are fractions: 0.8 must pass min_score 0.8 despite float rounding
_PROMPT_ROLES = ("system", "developer", "user", "assistant")


@dataclass(frozen=True)
class Example:
    line: int
    prompt: tuple[dict[str, Any], ...]  # the conversation up to the reference reply
    reference: str

    @property
    def question(self) -> str:
        """The last user message, for display."""
        users = [m for m in self.prompt if m["role"] == "user"]
        return _text(users[-1]["content"]) if users else ""


@dataclass(frozen=True)
class Run:
    """One model's replies to an eval dataset."""

    provider: str
    model_id: str
    outputs: tuple[str, ...]
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> float | None:
        """Estimated from the catalog's inference prices; None when the model is not in it."""
        info = catalog.load().model(self.model_id)
        prices = info.inference_prices(self.model_id) if info else None
        if prices is None:
            return None
        return (self.prompt_tokens * prices[0] + self.completion_tokens * prices[1]) / 1_000_000


@dataclass(frozen=True)
class Scored:
    run: Run
    passes: tuple[tuple[bool, ...], ...]  # per example, per check

    @property
    def passed(self) -> tuple[bool, ...]:
        return tuple(all(p) for p in self.passes)

    @property
    def score(self) -> float:
        return sum(self.passed) / len(self.passes) if self.passes else 0.0

    def check_counts(self, checks: Sequence[str]) -> dict[str, int]:
        return {c: sum(p[i] for p in self.passes) for i, c in enumerate(checks)}

    def to_dict(self, checks: Sequence[str]) -> dict[str, Any]:
        return {
            "model_id": self.run.model_id,
            "score": round(self.score, 6),
            "passed_examples": sum(self.passed),
            "check_passes": self.check_counts(checks),
            "prompt_tokens": self.run.prompt_tokens,
            "completion_tokens": self.run.completion_tokens,
            "estimated_cost_usd": _round(self.run.cost_usd),
            "cached": self.run.cached,
        }


@dataclass(frozen=True)
class Disagreement:
    line: int
    question: str
    reference: str
    output: str
    comparison: str


@dataclass(frozen=True)
class EvalResult:
    model: str  # the declared model
    eval: str
    dataset_sha256: str
    checks: tuple[str, ...]
    examples: int
    candidate: Scored
    comparison: Scored | None
    comparison_label: str | None  # "base" or the declared model compared with
    min_score: float | None
    min_improvement: float | None
    reasons: tuple[str, ...]  # why the gate failed; empty when it passed
    disagreements: tuple[Disagreement, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons

    def record(self) -> dict[str, Any]:
        """What ``ftops.lock`` keeps as the justification of a promotion."""
        return {
            "eval": self.eval,
            "dataset_sha256": self.dataset_sha256,
            "checks": list(self.checks),
            "examples": self.examples,
            "score": round(self.candidate.score, 6),
            "compared_with": self.comparison.run.model_id if self.comparison else None,
            "comparison_score": round(self.comparison.score, 6) if self.comparison else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "eval": self.eval,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "dataset_sha256": self.dataset_sha256,
            "checks": list(self.checks),
            "examples": self.examples,
            "min_score": self.min_score,
            "min_improvement": self.min_improvement,
            "candidate": self.candidate.to_dict(self.checks),
            "compare_with": self.comparison_label,
            "comparison": self.comparison.to_dict(self.checks) if self.comparison else None,
            "disagreements": [vars(d) for d in self.disagreements],
        }


@dataclass(frozen=True)
class Gate:
    results: tuple[EvalResult, ...]
    lock: lock.Lock

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


# --- examples and checks ------------------------------------------------------------------------


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def load_examples(path: Path) -> tuple[Example, ...]:
    """Each line's messages before its last assistant message, and that message as reference.
    The dataset was validated by ``engine.load_project``; a line without a reply is skipped."""
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            messages = json.loads(line).get("messages", [])
            replies = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
            if not replies:
                continue
            prompt = tuple({"role": m["role"], "content": m.get("content") or ""}
                           for m in messages[:replies[-1]] if m.get("role") in _PROMPT_ROLES)
            examples.append(Example(number, prompt, _text(messages[replies[-1]].get("content"))))
    return tuple(examples)


@cache
def _schema_validator(path: Path, mtime_ns: int) -> Any:
    schema = json.loads(path.read_text(encoding="utf-8"))
    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise FtopsError(f"not a valid JSON Schema: {exc.message}", path=str(path)) from None
    return cls(schema)


def check(name: str, output: str, reference: str, schemas: Mapping[str, Path]) -> bool:
    """Whether ``output`` passes check ``name`` (``reference`` is the expected reply)."""
    kind, _, arg = name.partition(":")
    if kind == "exact_match":
        return output.strip() == reference.strip()
    if kind == "contains":
        return reference.strip() in output
    if kind == "regex":
        return re.search(arg, output) is not None
    try:
        value = json.loads(output)
    except ValueError:
        return False
    if kind == "json_valid":
        return True
    if kind == "json_schema":
        path = schemas[name]
        return bool(_schema_validator(path, path.stat().st_mtime_ns).is_valid(value))
    raise FtopsError(f"unknown check '{name}'")  # the spec schema admits no other


def score(run: Run, examples: Sequence[Example], checks: Sequence[str],
          schemas: Mapping[str, Path]) -> Scored:
    passes = tuple(tuple(check(c, out, ex.reference, schemas) for c in checks)
                   for ex, out in zip(examples, run.outputs, strict=True))
    return Scored(run, passes)


# --- running a model, with the cache --------------------------------------------------------------


def _cache_path(cache_dir: Path, provider: str, model_id: str, dataset_sha256: str) -> Path:
    key = json.dumps([CACHE_VERSION, provider, model_id, dataset_sha256, SEED])
    return cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_model(remote: Remote, model_id: str, examples: Sequence[Example], dataset_sha256: str,
              *, cache_dir: Path, parallel: int = 4) -> Run:
    """``model_id``'s replies to every example: from the cache, else one request per example."""
    path = _cache_path(cache_dir, remote.provider, model_id, dataset_sha256)
    if path.exists():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if len(raw["outputs"]) == len(examples):
                return Run(remote.provider, model_id, tuple(raw["outputs"]),
                           raw["prompt_tokens"], raw["completion_tokens"], cached=True)
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is only a missed saving: ask again
    patient = remote.with_retries(RETRIES)

    def ask(example: Example) -> ChatReply:
        return patient.chat(model_id, list(example.prompt), seed=SEED)

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        replies = list(pool.map(ask, examples))
    run = Run(remote.provider, model_id, tuple(r.text for r in replies),
              sum(r.prompt_tokens for r in replies), sum(r.completion_tokens for r in replies))
    _write_atomic(path, json.dumps({"model_id": model_id, "dataset_sha256": dataset_sha256,
                                    "outputs": list(run.outputs),
                                    "prompt_tokens": run.prompt_tokens,
                                    "completion_tokens": run.completion_tokens}) + "\n")
    return run


# --- evaluating declared models -----------------------------------------------------------------


def trained_id(locked: lock.Lock, name: str) -> str | None:
    entry = locked.models.get(name)
    if entry is None or entry.status != "succeeded":
        return None
    return entry.fine_tuned_model


def gate_reasons(spec: Eval, candidate: float, comparison: float | None,
                 label: str | None) -> tuple[str, ...]:
    reasons = []
    if spec.min_score is not None and candidate < spec.min_score - _EPSILON:
        reasons.append(f"score {candidate:.3f} is below min_score {spec.min_score:.3f}")
    if spec.min_improvement is not None and comparison is not None:
        gain = candidate - comparison
        if gain < spec.min_improvement - _EPSILON:
            reasons.append(f"improvement {gain:+.3f} over {label} is below min_improvement "
                           f"{spec.min_improvement:.3f}")
    return tuple(reasons)


def disagreements(examples: Sequence[Example], candidate: Scored,
                  comparison: Scored | None) -> tuple[Disagreement, ...]:
    """Up to three examples where the replies differ, those where only one passes first."""
    if comparison is None:
        return ()
    rows = [(a_ok == b_ok, i) for i, (a, b, a_ok, b_ok) in enumerate(zip(
        candidate.run.outputs, comparison.run.outputs, candidate.passed, comparison.passed,
        strict=True)) if a != b]
    return tuple(Disagreement(examples[i].line, examples[i].question, examples[i].reference,
                              candidate.run.outputs[i], comparison.run.outputs[i])
                 for _, i in sorted(rows)[:DISAGREEMENTS])


def evaluate_model(project: engine.Project, remotes: Mapping[str, Remote], locked: lock.Lock,
                   model: ResolvedModel, *, parallel: int = 4) -> EvalResult:
    spec = next(e for e in project.spec.evals if e.name == model.eval)
    model_id = trained_id(locked, model.name)
    if model_id is None:
        raise FtopsError(f"model {model.name} has no trained model yet",
                         hint="run `ftops apply --wait` first")
    dataset = project.spec.dataset(spec.dataset)
    assert dataset is not None  # the spec resolver checked the reference
    sha = project.reports[spec.dataset].sha256
    examples = load_examples(dataset.path)
    cache_dir = project.root / CACHE_DIR

    def scored(provider: str, model_id: str) -> Scored:
        remote = remotes.get(provider)
        if remote is None:
            raise FtopsError(f"no provider {provider!r} is configured")
        run = run_model(remote, model_id, examples, sha, cache_dir=cache_dir, parallel=parallel)
        return score(run, examples, spec.checks, spec.schemas)

    candidate = scored(model.provider, model_id)
    comparison, label = None, None
    if spec.compare_with == "base":
        comparison, label = scored(model.provider, model.base_model), "base"
    elif spec.compare_with != "none":
        other = project.spec.model(spec.compare_with)
        other_id = trained_id(locked, spec.compare_with)
        if other is None or other_id is None:
            raise FtopsError(f"eval {spec.name} compares with model {spec.compare_with}, which "
                             "has no trained model yet", path=spec.file, line=spec.line,
                             hint="train it first (`ftops apply --wait`)")
        comparison, label = scored(other.provider, other_id), spec.compare_with
    return EvalResult(
        model=model.name, eval=spec.name, dataset_sha256=sha, checks=spec.checks,
        examples=len(examples), candidate=candidate, comparison=comparison,
        comparison_label=label, min_score=spec.min_score, min_improvement=spec.min_improvement,
        reasons=gate_reasons(spec, candidate.score, comparison.score if comparison else None,
                             label),
        disagreements=disagreements(examples, candidate, comparison))


def evaluate(project: engine.Project, remotes: Mapping[str, Remote], locked: lock.Lock,
             names: Sequence[str] = (), *, parallel: int = 4,
             report: Report = lambda _line: None) -> tuple[EvalResult, ...]:
    """The named models' evals (every model with an eval and a trained model when none is named).
    A named model without an eval or a trained model is an error; unnamed ones are skipped."""
    declared = {m.name: m for m in project.spec.models}
    unknown = sorted(set(names) - set(declared))
    if unknown:
        raise FtopsError("no such model: " + ", ".join(unknown))
    without = sorted(n for n in names if declared[n].eval is None)
    if without:
        raise FtopsError("no eval declared for model " + ", ".join(without),
                         hint="add `eval: <name>` to the model and an `evals:` entry")
    results = []
    for model in project.spec.models:
        if model.eval is None or (names and model.name not in names):
            continue
        if not names and trained_id(locked, model.name) is None:
            report(f"model {model.name}: not trained yet; eval {model.eval} skipped")
            continue
        results.append(evaluate_model(project, remotes, locked, model, parallel=parallel))
    return tuple(results)


def promote(project: engine.Project, locked: lock.Lock,
            results: Sequence[EvalResult]) -> lock.Lock:
    """Move each passing model's alias to it; a failing one leaves its alias where it was."""
    aliases = dict(locked.aliases)
    for result in results:
        model = project.spec.model(result.model)
        if model is not None and model.promote and result.passed:
            aliases[model.promote] = {"model": result.model,
                                      "model_id": result.candidate.run.model_id,
                                      "eval": result.record()}
    return replace(locked, aliases=dict(sorted(aliases.items())))


def gate(project: engine.Project, remotes: Mapping[str, Remote], locked: lock.Lock, *,
         parallel: int = 4, report: Report = lambda _line: None) -> Gate:
    """After apply: evaluate every trained model with an eval, promote those that pass and
    write ``ftops.lock`` when an alias moved."""
    results = evaluate(project, remotes, locked, parallel=parallel, report=report)
    updated = promote(project, locked, results)
    if updated.aliases != locked.aliases:
        lock.write_lock(project.root / engine.LOCK_FILE, updated)
    for result in results:
        report(summary_line(result))
    return Gate(results, updated)


def run_evals(specs: Path, names: Sequence[str] = (), *, emulator: bool = False,
              parallel: int = 4, report: Report = lambda _line: None) -> tuple[EvalResult, ...]:
    """``ftops eval``: read the account for the trained model ids and evaluate; promotes nothing
    (promotion belongs to ``apply --wait``) and leaves ``ftops.lock`` as it is."""
    project = engine.load_project(specs)
    with engine.connect(project, emulator=emulator) as remotes:
        current = lock.read_lock(project.root / engine.LOCK_FILE)
        locked = lock.update_lock(current, project.desired, engine.read_actual(remotes))
        return evaluate(project, remotes, locked, names, parallel=parallel, report=report)


# --- views --------------------------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:,.4f}"


def summary_line(result: EvalResult) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    line = (f"model {result.model}: eval {result.eval} {verdict}: score "
            f"{result.candidate.score:.3f} ({sum(result.candidate.passed)}/{result.examples})")
    if result.comparison is not None:
        line += (f" vs {result.comparison_label} {result.comparison.run.model_id} "
                 f"{result.comparison.score:.3f}")
    return line + "".join(f"; {reason}" for reason in result.reasons)


def results_text(results: Sequence[EvalResult]) -> str:
    if not results:
        return "no evals to run\n"
    lines = []
    for result in results:
        lines.append(summary_line(result))
        for label, scored in (("model", result.candidate), (result.comparison_label,
                                                            result.comparison)):
            if scored is None:
                continue
            counts = ", ".join(f"{c} {n}/{result.examples}"
                               for c, n in scored.check_counts(result.checks).items())
            cached = " (cached)" if scored.run.cached else ""
            lines.append(f"  {label}: {counts}; {scored.run.tokens:,} tokens; est. cost "
                         f"{_usd(scored.run.cost_usd)}{cached}")
    return "\n".join(lines) + "\n"


def results_json(results: Sequence[EvalResult]) -> str:
    return json.dumps({"evals": [r.to_dict() for r in results]}, indent=2, sort_keys=True) + "\n"


def _cell(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    flat = flat if len(flat) <= limit else flat[:limit - 1] + "…"
    return "`" + flat.replace("|", "\\|").replace("`", "'") + "`" if flat else "—"


def results_markdown(results: Sequence[EvalResult]) -> str:
    """For the pull request: per model a table of score vs comparison, pass/fail and cost, and
    up to three examples where the models disagree."""
    if not results:
        return ""
    parts = ["#### ftops eval"]
    for r in results:
        verdict = "✅ passed" if r.passed else "❌ FAILED"
        gate = ", ".join(f"{k} {v:g}" for k, v in (("min_score", r.min_score),
                                                    ("min_improvement", r.min_improvement))
                         if v is not None) or "no threshold"
        lines = [f"##### `{r.model}`: eval `{r.eval}` {verdict}", "",
                 f"{r.examples} examples; checks: {', '.join(f'`{c}`' for c in r.checks)}; "
                 f"gate: {gate}.", "",
                 "| | Model | Score | " + " | ".join(f"`{c}`" for c in r.checks)
                 + " | Tokens | Est. cost |",
                 "|---|---|--:|" + "--:|" * len(r.checks) + "--:|--:|"]
        for label, scored in (("candidate", r.candidate), (r.comparison_label, r.comparison)):
            if scored is None:
                continue
            counts = " | ".join(str(n) for n in scored.check_counts(r.checks).values())
            lines.append(f"| {label} | `{scored.run.model_id}` | {scored.score:.3f} | {counts} | "
                         f"{scored.run.tokens:,} | {_usd(scored.run.cost_usd)} |")
        lines += [f"- {reason}" for reason in r.reasons]
        if r.disagreements:
            lines += ["", f"| Line | Prompt | Reference | `{r.model}` | {r.comparison_label} |",
                      "|--:|---|---|---|---|"]
            lines += [f"| {d.line} | {_cell(d.question)} | {_cell(d.reference)} | "
                      f"{_cell(d.output)} | {_cell(d.comparison)} |" for d in r.disagreements]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
