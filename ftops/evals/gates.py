"""The gate: evaluate declared models against their comparison, decide pass or fail, and move a
passing model's alias in ``ftops.lock``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ftops import lock
from ftops.errors import FtopsError, UsageError
from ftops.evals.checks import Example, load_examples, score
from ftops.evals.results import Disagreement, EvalResult, Gate, Scored
from ftops.evals.runner import CACHE_DIR, cached_run, run_model
from ftops.evals.views import summary_line
from ftops.project import LOCK_FILE, Project
from ftops.providers import Account
from ftops.spec import Eval, ResolvedModel

Report = Callable[[str], None]
DISAGREEMENTS = 3
_EPSILON = 1e-9  # scores are fractions: 0.8 must pass min_score 0.8 despite float rounding


def trained_id(locked: lock.Lock, name: str) -> str | None:
    entry = locked.models.get(name)
    if entry is None or entry.status != "succeeded":
        return None
    if entry.retired:
        # Cached replies would still score it: say that the model itself no longer answers.
        raise FtopsError(f"model {name} ({entry.fine_tuned_model}) stopped answering on "
                         f"{entry.retired}: its base has shut down; nothing to evaluate",
                         hint="see `ftops migrate` to retrain it on a base that lives")
    return entry.fine_tuned_model


def _gone(locked: lock.Lock, name: str) -> bool:
    """The model no longer answers: its base shut down, or it was deleted."""
    entry = locked.models.get(name)
    return entry is not None and (bool(entry.retired) or entry.deleted)


def _last_id(locked: lock.Lock, name: str) -> str | None:
    """The model id a comparison is about, also once the model no longer answers."""
    return locked.models[name].fine_tuned_model if _gone(locked, name) else trained_id(
        locked, name)


def _remembered(locked: lock.Lock, spec: Eval, other: ResolvedModel, other_id: str,
                examples: Sequence[Example], sha: str, cache_dir: Path) -> Scored:
    """A comparison model that no longer answers, scored by the replies cached on its first
    eval: a successor is still held to the model it replaces."""
    run = cached_run(cache_dir, other.provider, other_id, examples, sha)
    if run is None:
        why = "stopped answering" if locked.models[other.name].retired else "was deleted"
        raise FtopsError(f"eval {spec.name} compares with model {other.name} ({other_id}), which "
                         f"{why}, and no reply of it to dataset {spec.dataset} is cached",
                         path=spec.file, line=spec.line,
                         hint="the comparison needs its replies from an eval run while it "
                              "answered; set compare_with: base or none")
    return score(run, examples, spec.checks, spec.schemas)


def served_as(locked: lock.Lock, name: str) -> str | None:
    """What a call names to reach the model: on Azure, the deployment serving it."""
    entry = locked.models.get(name)
    deployment = entry.deployment if entry else None
    if deployment and entry and deployment.get("model_id") == entry.fine_tuned_model:
        return str(deployment["name"])
    return None


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


def evaluate_model(project: Project, remotes: Mapping[str, Account], locked: lock.Lock,
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

    def scored(provider: str, model_id: str, call_as: str | None = None) -> Scored:
        remote = remotes.get(provider)
        if remote is None:
            raise FtopsError(f"no provider {provider!r} is configured")
        run = run_model(remote, model_id, examples, sha, cache_dir=cache_dir, parallel=parallel,
                        call_as=call_as)
        return score(run, examples, spec.checks, spec.schemas)

    candidate = scored(model.provider, model_id, served_as(locked, model.name))
    comparison, label = None, None
    if spec.compare_with == "base":
        comparison, label = scored(model.provider, model.base_model), "base"
    elif spec.compare_with != "none":
        other = project.spec.model(spec.compare_with)
        other_id = _last_id(locked, spec.compare_with)
        if other is None or other_id is None:
            raise FtopsError(f"eval {spec.name} compares with model {spec.compare_with}, which "
                             "has no trained model yet", path=spec.file, line=spec.line,
                             hint="train it first (`ftops apply --wait`)")
        comparison = (_remembered(locked, spec, other, other_id, examples, sha, cache_dir)
                      if _gone(locked, spec.compare_with) else
                      scored(other.provider, other_id, served_as(locked, spec.compare_with)))
        label = spec.compare_with
    return EvalResult(
        model=model.name, eval=spec.name, dataset_sha256=sha, checks=spec.checks,
        examples=len(examples), candidate=candidate, comparison=comparison,
        comparison_label=label, min_score=spec.min_score, min_improvement=spec.min_improvement,
        reasons=gate_reasons(spec, candidate.score, comparison.score if comparison else None,
                             label),
        disagreements=disagreements(examples, candidate, comparison))


def evaluate(project: Project, remotes: Mapping[str, Account], locked: lock.Lock,
             names: Sequence[str] = (), *, parallel: int = 4,
             report: Report = lambda _line: None,
             skip_gone: bool = False) -> tuple[EvalResult, ...]:
    """The named models' evals (every model with an eval and a trained model when none is named).
    A named model without an eval or a trained model is an error; unnamed ones are skipped, and
    with ``skip_gone`` (the gate after apply) so are those that no longer answer."""
    declared = {m.name: m for m in project.spec.models}
    unknown = sorted(set(names) - set(declared))
    if unknown:
        raise UsageError("no such model: " + ", ".join(unknown))
    without = sorted(n for n in names if declared[n].eval is None)
    if without:
        raise FtopsError("no eval declared for model " + ", ".join(without),
                         hint="add `eval: <name>` to the model and an `evals:` entry")
    results = []
    for model in project.spec.models:
        if model.eval is None or (names and model.name not in names):
            continue
        if skip_gone and not names and _gone(locked, model.name):
            report(f"model {model.name}: no longer answers; eval {model.eval} skipped")
            continue
        if not names and trained_id(locked, model.name) is None:
            report(f"model {model.name}: not trained yet; eval {model.eval} skipped")
            continue
        results.append(evaluate_model(project, remotes, locked, model, parallel=parallel))
    return tuple(results)


def promote(project: Project, locked: lock.Lock,
            results: Sequence[EvalResult]) -> lock.Lock:
    """Move each passing model's alias to it; a failing one leaves its alias where it was."""
    aliases = dict(locked.aliases)
    # A successor whose gate holds takes the alias: its original's passing gate does not keep it.
    taken_over = {m.migrates for r in results if r.passed
                  and (m := project.spec.model(r.model)) is not None and m.migrates and m.promote}
    for result in results:
        model = project.spec.model(result.model)
        if model is not None and model.promote and result.passed and (
                model.name not in taken_over):
            entry = {"model": result.model, "model_id": result.candidate.run.model_id,
                     "eval": result.record()}
            serving = served_as(locked, result.model)
            if serving:  # on Azure, what applications call: the deployment's name
                entry["deployment"] = serving
            aliases[model.promote] = entry
    return replace(locked, aliases=dict(sorted(aliases.items())))


def gate(project: Project, remotes: Mapping[str, Account], locked: lock.Lock, *,
         parallel: int = 4, report: Report = lambda _line: None) -> Gate:
    """After apply: evaluate every trained model with an eval, promote those that pass and
    write ``ftops.lock`` when an alias moved."""
    results = evaluate(project, remotes, locked, parallel=parallel, report=report,
                       skip_gone=True)
    updated = promote(project, locked, results)
    if updated.aliases != locked.aliases:
        lock.write_lock(project.root / LOCK_FILE, updated)
    for result in results:
        report(summary_line(result))
    return Gate(results, updated)
