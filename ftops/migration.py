"""``ftops migrate``'s pure part: from resolved specs, a target (provider and base) and the
models to move, the spec entries of their successors, every setting that could not be carried
over, and the reasons a target cannot take them (examples too long, a method or key it lacks).

Nothing is written here; ``ftops.commands.migrate`` writes the file. The mapping follows the
provider tables the spec resolver checks with (``ftops.methods``, the catalog), so that what is
written validates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftops import catalog, formats, methods, tokens
from ftops.errors import Diagnostic
from ftops.spec import METHOD_HYPERPARAMETERS, Eval, Spec, dump_spec_yaml
from ftops.state import ResolvedModel

MAX_LISTED = 20  # examples named per dataset that does not fit; the rest are counted
# Keys that mean the same on two open-weight providers but are spelled differently.
_RENAMES = {"lora_r": "lora_rank", "lora_rank": "lora_r",
            "context_length": "max_context_length", "max_context_length": "context_length"}
_SPEC_HP = frozenset(k for keys in METHOD_HYPERPARAMETERS.values() for k in keys)
_AZURE_ONLY = ("training_type", "deploy")


@dataclass(frozen=True)
class Target:
    provider: str  # the providers entry the successors train on
    type: str  # its type
    base: str  # the catalog's id of the base they train from
    declare: dict[str, Any] | None = None  # a providers entry the new file declares


@dataclass
class Migration:
    """What the new spec file holds, section by section, and what to tell the user."""

    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)  # successor -> not carried over
    notes: list[str] = field(default_factory=list)
    successors: dict[str, str] = field(default_factory=dict)  # original -> successor


def with_ancestors(spec: Spec, names: Sequence[str]) -> list[ResolvedModel]:
    """The named models and every model they chain on, parents first (the specs' order)."""
    wanted: set[str] = set()
    for name in names:
        model = spec.model(name)
        while model is not None and model.name not in wanted:
            wanted.add(model.name)
            model = spec.model(model.parent) if model.parent else None
    return [m for m in spec.models if m.name in wanted]


def offered_methods(target: Target) -> tuple[str, ...]:
    """The methods the target fine-tunes its base with: the provider's offer (or Azure's
    table), within what ftops sends to that provider type."""
    known = catalog.load()
    provider = known.provider(target.type)
    offered = provider.methods.get(target.base) if provider else None
    if offered is None:
        info = known.model(target.base)
        offered = info.methods if info else ()
    table = methods.KEYS.get(target.type)
    return tuple(m for m in offered if table is None or m in table)


def _taken(target: Target, method: str) -> tuple[str, ...]:
    table = methods.KEYS.get(target.type)
    return table.get(method, ()) if table is not None else METHOD_HYPERPARAMETERS[method]


def map_settings(model: ResolvedModel, target: Target) -> tuple[dict[str, Any], dict[str, Any],
                                                                 list[str]]:
    """(hyperparameters, options, what could not be carried over) for ``model`` on the
    target. "auto" means the provider's default everywhere, so it is not written."""
    taken = _taken(target, model.method)
    hyper: dict[str, Any] = {}
    options: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in model.hyperparameters.items():
        if value == "auto":
            continue
        name = key if key in taken else _RENAMES.get(key, key)
        if name not in taken:
            why = (" (it takes an absolute learning_rate under options:)"
                   if key == "learning_rate_multiplier" and "learning_rate" in taken else "")
            dropped.append(f"{key}: {json.dumps(value)} — {target.type} takes no {key}{why}")
            continue
        (hyper if name in _SPEC_HP else options)[name] = value
    if model.seed is not None and target.type in methods.SEEDLESS:
        dropped.append(f"seed: {model.seed} — {target.type} takes no seed")
    if target.type != "azure":
        dropped += [f"{key} — {target.type} has no {key} (Azure only)"
                    for key in _AZURE_ONLY if key in model.key_lines]  # written, not defaulted
    return hyper, options, dropped


def _examples(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            if raw.strip():
                try:
                    yield number, json.loads(raw)
                except ValueError:
                    continue  # `ftops validate` reports it; it fits nothing either way


def fit_problems(spec: Spec, models: Sequence[ResolvedModel], target: Target) -> list[Diagnostic]:
    """Why the target cannot train ``models``: a method it does not offer, or examples longer
    than its per-example limit on the base (counted with the base's encoding), one line each."""
    known = catalog.load()
    info = known.model(target.base)
    offered = offered_methods(target)
    out: list[Diagnostic] = []
    checked: set[tuple[str, str]] = set()
    for model in models:
        if model.method not in offered:
            out.append(Diagnostic(
                "error", "unsupported_method",
                f"model {model.name}: {target.type} does not fine-tune {target.base} with method "
                f"{model.method} (offers: {', '.join(offered) or 'nothing'})",
                path=model.file, line=model.key_lines.get("method", model.line)))
            continue
        limit = known.example_token_limit(target.type, target.base, model.method)
        if limit is None or info is None:
            continue
        counter = tokens.TokenCounter(info.encoding)
        for name in (model.training, model.validation):
            dataset = spec.dataset(name) if name else None
            if dataset is None or (dataset.name, model.method) in checked:
                continue
            checked.add((dataset.name, model.method))
            out += _too_long(dataset.path, dataset.display, dataset.format, counter, limit,
                             f"{target.type}'s limit for {target.base} ({model.method})")
    return out


def _too_long(path: Path, display: str, fmt: str, counter: tokens.TokenCounter, limit: int,
              what: str) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    over = 0
    for number, example in _examples(path):
        count = formats.check(fmt, example, counter)[1] if isinstance(example, dict) else None
        if count is None or count <= limit:
            continue
        over += 1
        if over <= MAX_LISTED:
            found.append(Diagnostic("error", "example_too_long",
                                    f"example has {count} tokens, over {what} of {limit}",
                                    path=display, line=number))
    if over > MAX_LISTED:
        found.append(Diagnostic("error", "example_too_long",
                                f"and {over - MAX_LISTED} more examples over {limit} tokens",
                                path=display))
    return found


def successor_name(original: str, target: Target, given: str | None) -> str:
    return given or f"{original}-{target.provider}"[:64]


def _eval_entry(spec: Spec, original: ResolvedModel, source: str | None,
                out_dir: Path) -> tuple[dict[str, Any], str] | None:
    """The successor's eval (compared with the original: as good or better, and the original
    eval's min_score), and where it comes from; None when there is nothing to evaluate on."""
    chosen = source or original.eval
    ev: Eval | None = next((e for e in spec.evals if e.name == chosen), None)
    if ev is not None:
        checks = [_moved_check(c, ev, out_dir) for c in ev.checks]
        entry: dict[str, Any] = {"dataset": ev.dataset, "checks": checks}
        if ev.min_score is not None:
            entry["min_score"] = ev.min_score
        where = f"the dataset and checks of eval {ev.name}"
    else:
        dataset = spec.dataset(chosen or original.validation or "")
        if dataset is None or dataset.format != "chat":
            return None
        entry = {"dataset": dataset.name, "checks": ["exact_match"]}
        where = f"dataset {dataset.name} (exact_match; review the checks)"
    entry["compare_with"] = original.name
    entry["min_improvement"] = 0.0
    return entry, where


def _moved_check(check: str, ev: Eval, out_dir: Path) -> str:
    """A json_schema check names its file relative to its spec file: say it from the new one."""
    if not check.startswith("json_schema:") or check not in ev.schemas:
        return check
    return "json_schema:" + Path(os.path.relpath(ev.schemas[check], out_dir)).as_posix()


def successor_entry(model: ResolvedModel, target: Target, base: str,
                    eval_name: str | None) -> tuple[dict[str, Any], list[str]]:
    """The successor's models entry (its keys in the order a person writes them)."""
    hyper, options, dropped = map_settings(model, target)
    entry: dict[str, Any] = {"base": base, "provider": target.provider,
                             "training": model.training}
    if model.validation:
        entry["validation"] = model.validation
    if model.method != "supervised":
        entry["method"] = model.method
    if hyper:
        entry["hyperparameters"] = hyper
    if options:
        entry["options"] = options
    for key in ("suffix", "max_cost_usd"):
        if getattr(model, key) is not None:
            entry[key] = getattr(model, key)
    if model.seed is not None and target.type not in methods.SEEDLESS:
        entry["seed"] = model.seed
    if model.metadata:
        entry["metadata"] = dict(model.metadata)
    if eval_name:
        entry["eval"] = eval_name
        if model.promote:
            entry["promote"] = model.promote
    entry["migrates"] = model.name
    return entry, dropped


def migrate(spec: Spec, models: Sequence[ResolvedModel], target: Target, *,
            names: dict[str, str], eval_source: str | None, out_dir: Path,
            ) -> tuple[Migration, list[Diagnostic]]:
    """Successors of ``models`` (parents first; ``names``: original -> successor), their evals
    and, if the target is new, its providers entry; and the problems that stop it."""
    done = Migration()
    problems: list[Diagnostic] = []
    models_out: dict[str, Any] = {}
    evals_out: dict[str, Any] = {}
    for model in models:
        successor = names[model.name]
        done.successors[model.name] = successor
        found = _eval_entry(spec, model, eval_source, out_dir)
        if found is None:
            problems.append(Diagnostic(
                "error", "missing_key", f"model {model.name}: no eval and no chat validation "
                "dataset to compare its successor with; pass --eval NAME",
                path=model.file, line=model.line))
            continue
        evals_out[successor], where = found
        base = names[model.parent] if model.parent else target.base
        models_out[successor], dropped = successor_entry(model, target, base, successor)
        done.dropped[successor] = dropped
        done.notes.append(f"model {successor}: {target.provider} from {base}, migrates "
                          f"{model.name}; eval {successor} on {where}, compared with "
                          f"{model.name}" + (f"; promotes {model.promote} if it passes"
                                              if model.promote else ""))
        done.notes += [f"  not carried over: {line}" for line in dropped]
    used = sorted({d for m in models for d in (m.training, m.validation) if d}
                  | {e["dataset"] for e in evals_out.values()})
    done.notes.append(f"datasets used as they are ({', '.join(used)}): {target.type} takes "
                      "the same JSONL formats, so none is converted")
    if target.declare is not None:
        done.sections["providers"] = {target.provider: target.declare}
    done.sections["evals"] = evals_out
    done.sections["models"] = models_out
    return done, problems


def render(done: Migration, header: str) -> str:
    """The spec file's text: ``header``, the entries, and under each successor the settings
    that could not be carried over, as comments."""
    lines = dump_spec_yaml(done.sections, header).splitlines()
    out: list[str] = []
    section = ""
    for line in lines:
        out.append(line)
        if not line.startswith(" "):
            section = line.rstrip(":")
        elif section == "models" and line.startswith("  ") and not line.startswith("   "):
            name = line.strip().rstrip(":").strip("'\"")
            out += [f"    # not carried over: {text}" for text in done.dropped.get(name, ())]
    return "\n".join(out) + "\n"
