"""Everything a job will be created with, for the plan's collapsed details (markdown) and
``ftops plan -v`` (terminal). Pure: data in, str out.

The plan holds what apply sends (base, dataset hashes, method, hyperparameters, ...); what only
dataset analysis knows (a dataset's path, examples and tokens, the epochs ``auto`` resolves to,
the billed tokens) comes in ``JobFacts``, built by the command from the project. Without facts
(a saved plan) the details say what the plan holds. Dataset content never appears: a path, a
short hash and counts only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ftops.cost import format_usd
from ftops.plan import STARTS_JOB, Action, ActionType, DatasetRef, Plan
from ftops.render.common import cell, code, short

# The actions whose row gets the job's details (a blocked or retrain job is one too).
DETAILED = STARTS_JOB


@dataclass(frozen=True)
class DatasetFacts:
    path: str
    examples: int
    tokens: int  # billable tokens (each example cut to the base model's limit)


@dataclass(frozen=True)
class ModelFacts:
    epochs: int  # n_epochs, or what ``auto`` resolves to for this dataset
    billed_tokens: int  # epochs x billable training tokens
    options: Mapping[str, object] = field(default_factory=dict)  # provider-only settings


@dataclass(frozen=True)
class JobFacts:
    datasets: Mapping[str, DatasetFacts] = field(default_factory=dict)  # dataset name ->
    models: Mapping[str, ModelFacts] = field(default_factory=dict)  # model name ->


NO_FACTS = JobFacts()


def job_fields(action: Action, facts: JobFacts = NO_FACTS) -> list[tuple[str, str]]:
    """(label, value) pairs: the job ``action`` would create, in the order people check them."""
    training = action.training
    if training is None or action.action not in DETAILED:
        return []
    model = facts.models.get(action.name)
    base = training.base or f"the fine-tuned model of model.{training.parent} once it succeeds"
    rows = [("provider", action.provider), ("base", base),
            ("training", _dataset(training.training, facts))]
    if training.validation is not None:
        rows.append(("validation", _dataset(training.validation, facts)))
    rows.append(("method", training.method))
    options = model.options if model is not None else {}
    hyper = {k: v for k, v in training.hyperparameters.items() if k not in options}
    if model is not None:
        auto = hyper.get("n_epochs", "auto") == "auto"
        hyper["n_epochs"] = f"{model.epochs} (auto)" if auto else model.epochs
    rows.append(("hyperparameters", _pairs(hyper)))
    rows += [("suffix", short(training.suffix)), ("seed", short(training.seed))]
    if training.training_type:
        rows.append(("training type", training.training_type))
    if model is not None and model.options:
        rows.append(("options", _pairs(model.options)))
    rows.append(("metadata", _pairs(training.metadata)))
    if model is not None:
        rows.append(("billed tokens", f"{model.billed_tokens:,} (est.)"))
    cost = action.display.cost_usd
    rows.append(("cost", "unknown" if cost is None else f"{format_usd(cost)} (est.)"))
    return rows


def details_markdown(action: Action, facts: JobFacts = NO_FACTS) -> str:
    """A collapsed block under the plan table: the job's fields, then a replace's field diff."""
    rows = job_fields(action, facts)
    if not rows and not action.changes:
        return ""
    about = "the job it creates" if rows else f"{len(action.changes)} field(s) differ"
    if rows and action.changes:
        about += f"; {len(action.changes)} field(s) differ"
    out = [f"<details><summary><code>{cell(action.address)}</code> ({action.action.value}): "
           f"{about}</summary>", ""]
    if rows:
        out += ["| | |", "|---|---|", *(f"| {label} | {cell(value)} |" for label, value in rows)]
    if action.changes:
        out += ["", "| Field | Before | After |", "|---|---|---|"]
        out += [f"| {code(c.path)} | {code(c.before)} | {code(c.after)} |"
                for c in action.changes]
    return "\n".join([*out, "", "</details>"])


def details_text(plan: Plan, facts: JobFacts = NO_FACTS) -> str:
    """``ftops plan -v``: each job's fields (and a replace's diff) under its address."""
    lines: list[str] = []
    for action in plan.actions:
        rows = job_fields(action, facts)
        if not rows:
            continue
        width = max(len(label) for label, _ in rows)
        lines += ["", f"  {action.address} ({action.action.value}):"]
        lines += [f"      {label:<{width}}  {value}" for label, value in rows]
        lines += [f"      changed {c.path}: {short(c.before)} -> {short(c.after)}"
                  for c in action.changes if action.action is ActionType.REPLACE]
    return ("Jobs:" + "\n".join(lines) + "\n") if lines else ""


def _dataset(ref: DatasetRef, facts: JobFacts) -> str:
    known = facts.datasets.get(ref.name)
    head = f"{ref.name} (sha256 {short(ref.sha256)}"
    if known is None:
        return head + ")"
    return f"{head}, {known.path}, {known.examples:,} examples, {known.tokens:,} tokens)"


def _pairs(values: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={short(v)}" for k, v in sorted(values.items())) or "(none)"
