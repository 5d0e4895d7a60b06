"""Merging all spec files into one namespace and resolving it: collect_specs and load_specs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ftops import catalog, gitinfo
from ftops.errors import Diagnostic, FtopsError, SpecError
from ftops.spec import azure, openweight
from ftops.spec.reader import _Entry, _Problems, _read_file, _spec_files
from ftops.spec.schema import (
    _HP_KEYS,
    _SECTIONS,
    _SINGULAR,
    DEFAULT_ENCODING,
    DEFAULT_PROVIDER,
    METHOD_FORMAT,
    METHOD_HYPERPARAMETERS,
    _Hyperparameters,
    _Model,
)
from ftops.spec.sections import _SectionResolver
from ftops.spec.types import Provider, ResolvedModel, Spec


def repo_root(path: Path) -> Path:
    """The git work tree root, or the spec directory's parent outside a repository."""
    try:
        spec_dir = path if path.is_dir() else path.parent
    except OSError:  # an unusable path, already reported by _spec_files
        spec_dir = path.parent
    try:
        return gitinfo.repo_root(spec_dir)
    except FtopsError:
        return spec_dir.resolve().parent


def collect_specs(paths: Path | Sequence[Path]) -> tuple[Spec, tuple[Diagnostic, ...]]:
    """Everything that resolved, and every problem found (empty when the specs are valid)."""
    roots = [paths] if isinstance(paths, Path) else list(paths)
    if not roots:
        raise SpecError("no spec path given")
    problems = _Problems()
    files: list[str] = []
    named: dict[str, dict[str, _Entry]] = {section: {} for section in _SECTIONS}
    for root_path in roots:
        for file, display in _spec_files(root_path, problems):
            files.append(display)
            for entry in _read_file(file, display, problems):
                _declare(entry, named, problems)
    spec = _Resolver(repo_root(roots[0]), named, problems).resolve(tuple(files))
    ordered = sorted(problems.items, key=lambda d: (d.path, d.line or 0))
    return spec, tuple(ordered)


def load_specs(paths: Path | Sequence[Path]) -> Spec:
    """The resolved spec; raises SpecError with every problem as a diagnostic."""
    spec, problems = collect_specs(paths)
    if problems:
        more = len(problems) - 1
        raise SpecError(
            str(problems[0]),
            hint=f"and {more} more: run `ftops validate` to list them all" if more else None,
            diagnostics=problems,
        )
    return spec


def _declare(entry: _Entry, named: dict[str, dict[str, _Entry]], problems: _Problems) -> None:
    """Adds the entry to its section, or reports the name as taken (the first one is kept).

    models and base_models share names: `base:` may name either, so one name must mean one thing.
    """
    table = named[entry.section]
    previous = table.get(entry.name)
    if previous is None and entry.section in ("models", "base_models"):
        other = "base_models" if entry.section == "models" else "models"
        previous = named[other].get(entry.name)
    if previous is None:
        table[entry.name] = entry
        return
    what = _SINGULAR[entry.section]
    if previous.section != entry.section:
        message = (
            f"'{entry.name}' is both a {_SINGULAR[previous.section]} and a {what}: "
            "`base:` could not tell them apart"
        )
    else:
        message = f"{what} '{entry.name}' is defined twice"
    problems.add(
        entry.file,
        entry.line,
        f"{message} ({previous.file}:{previous.line} and {entry.file}:{entry.line})",
        "duplicate_name",
    )


class _Resolver(_SectionResolver):
    """Resolves every section, each after the sections it refers to.

    Datasets, providers and evals come first, so that a model is resolved only when everything
    it names resolved; a model's parent is resolved before it (``resolve_models``).
    """

    def __init__(
        self, root: Path, named: dict[str, dict[str, _Entry]], problems: _Problems
    ) -> None:
        super().__init__(root, named, problems)
        self.models: dict[str, ResolvedModel] = {}

    def resolve(self, files: tuple[str, ...]) -> Spec:
        for entry in self.valid("datasets"):
            self.dataset(entry)
        for entry in self.valid("providers"):
            self.provider(entry)
        if DEFAULT_PROVIDER not in self.named["providers"]:
            self.providers[DEFAULT_PROVIDER] = Provider(
                DEFAULT_PROVIDER, "openai", None, None, None, None, None, None
            )
        for entry in self.valid("evals"):
            self.eval(entry)
        for entry in self.valid("pricing"):
            self.prices[self.canonical(entry.name)] = entry.value.training_usd_per_1m
        self.resolve_models()
        return Spec(
            root=self.root,
            files=files,
            datasets=tuple(self.datasets.values()),
            models=tuple(self.models.values()),
            evals=tuple(self.evals.values()),
            providers=tuple(self.providers[name] for name in sorted(self.providers)),
        )

    # -- models

    def resolve_models(self) -> None:
        entries = {e.name: e for e in self.valid("models")}
        parents = {
            n: e.value.base for n, e in entries.items() if e.value.base in self.named["models"]
        }
        in_cycle = self.cycles(entries, parents)
        promoted: dict[str, _Entry] = {}
        done: set[str] = set()

        def visit(name: str) -> None:
            if name in done or name in in_cycle or name not in entries:
                return
            done.add(name)
            parent = parents.get(name)
            if parent is not None:
                visit(parent)
            resolved = self.model(entries[name], parent, promoted)
            if resolved is not None:
                self.models[name] = resolved

        for name in sorted(entries):
            visit(name)

    def cycles(self, entries: dict[str, _Entry], parents: dict[str, str]) -> set[str]:
        """Names of models on a base cycle; each is reported at its own `base:` line."""
        found: set[str] = set()
        for start in sorted(parents):
            path = [start]
            while (nxt := parents.get(path[-1])) is not None and nxt not in path:
                path.append(nxt)
            if nxt is None or nxt in found:
                continue
            cycle = path[path.index(nxt) :]
            found.update(cycle)
            for i, name in enumerate(cycle):
                chain = " -> ".join([*cycle[i:], *cycle[: i + 1]])
                self.problems.at(entries[name], ("base",), f"models form a cycle: {chain}", "cycle")
        return found

    def model(
        self, entry: _Entry, parent: str | None, promoted: dict[str, _Entry]
    ) -> ResolvedModel | None:
        """The models entry resolved, or None when anything about it is wrong.

        Every check runs even after one failed, so that one run reports all of the entry's
        problems; they are reported in the order of the list below.
        """
        value: _Model = entry.value
        base_model = self.base_model_of(value, parent)
        paths, datasets_ok = self.model_datasets(entry)
        hyper = {**_written_hyperparameters(value), **openweight.options(value)}
        ok = [
            datasets_ok,
            self.check_hyperparameters(entry, hyper),
            self.check_grader(entry),
            self.check_provider(entry),
            self.check_eval(entry),
            self.check_promote(entry, promoted),
            self.check_metadata(entry),
        ]
        info = catalog.load().model(base_model) if base_model else None
        ok.append(self.check_method_supported(entry, info))
        provider = self.providers.get(value.provider)
        ok += [azure.check(self.problems, entry, provider, base_model,
                           chained=parent is not None),
               openweight.check(self.problems, entry, provider)]
        training_path = paths["training"]
        # A broken entry or an unresolved parent is still checked, but never resolved.
        if not all(ok) or entry.broken or base_model is None or training_path is None:
            return None
        return self.resolved_model(
            entry, parent, base_model, training_path, paths["validation"], hyper, info
        )

    def base_model_of(self, value: _Model, parent: str | None) -> str | None:
        """The literal model id at the root of the chain; None when a parent or alias is invalid."""
        if parent is not None:
            parent_model = self.models.get(parent)
            return parent_model.base_model if parent_model else None
        alias = self.named["base_models"].get(value.base)
        return value.base if alias is None else alias.value

    def model_datasets(self, entry: _Entry) -> tuple[dict[str, Path | None], bool]:
        """The training and validation files, and whether both are datasets the method can use."""
        value: _Model = entry.value
        paths: dict[str, Path | None] = {"training": None, "validation": None}
        ok = True
        for key in ("training", "validation"):
            name = getattr(value, key)
            if name is None:
                continue
            if self.ref(entry, (key,), "datasets", name) is None or name not in self.datasets:
                ok = False
                continue
            dataset = self.datasets[name]
            paths[key] = dataset.path
            wanted = METHOD_FORMAT[value.method]
            if dataset.format != wanted:
                self.problems.at(
                    entry,
                    (key,),
                    f"dataset '{name}' has format {dataset.format}, but method "
                    f"{value.method} needs format {wanted}",
                    "format_mismatch",
                )
                ok = False
        if value.validation is not None and value.validation == value.training:
            self.problems.at(
                entry, ("validation",), "must be a different dataset than training", "invalid_value"
            )
            ok = False
        return paths, ok

    def check_hyperparameters(self, entry: _Entry, hyper: dict[str, int | float | str]) -> bool:
        """Each hyperparameter written is one the model's method takes."""
        method = entry.value.method
        ok = True
        for key in hyper:
            if key not in METHOD_HYPERPARAMETERS[method] and key not in entry.value.options:
                users = [m for m, keys in METHOD_HYPERPARAMETERS.items() if key in keys]
                self.problems.at(
                    entry,
                    ("hyperparameters", key),
                    f"applies only to method {' or '.join(users)}, not {method}",
                    "invalid_hyperparameter",
                )
                ok = False
        return ok

    def check_grader(self, entry: _Entry) -> bool:
        """Method reinforcement needs a grader, and no other method takes one."""
        value: _Model = entry.value
        if value.method == "reinforcement" and value.grader is None:
            self.problems.at(
                entry, ("method",), "method reinforcement needs a `grader:`", "missing_key"
            )
            return False
        if value.method != "reinforcement" and value.grader is not None:
            self.problems.at(
                entry, ("grader",), "applies only to method reinforcement", "invalid_value"
            )
            return False
        return True

    def check_provider(self, entry: _Entry) -> bool:
        """The provider has a valid entry or is the implicit default (``ref`` reports the rest)."""
        name = entry.value.provider
        return self.ref(entry, ("provider",), "providers", name) is not None or (
            name in self.providers
        )

    def check_eval(self, entry: _Entry) -> bool:
        """The eval, if any, resolved (``ref`` reports an undefined one)."""
        name = entry.value.eval
        return name is None or (
            self.ref(entry, ("eval",), "evals", name) is not None and name in self.evals
        )

    def check_promote(self, entry: _Entry, promoted: dict[str, _Entry]) -> bool:
        """The alias to promote is gated by an eval and promoted by no other model.

        ``promoted`` collects the aliases claimed so far, so the first model to claim one keeps it.
        """
        value: _Model = entry.value
        if value.promote is None:
            return True
        if value.eval is None:
            self.problems.at(
                entry,
                ("promote",),
                "needs an `eval:`: promotion happens only when it passes",
                "missing_key",
            )
            return False
        other = promoted.get(value.promote)
        # A successor (`migrates:`) takes over its original's alias when its own gate holds.
        if other is not None and value.migrates != other.name and (
                other.value.migrates != entry.name):
            self.problems.at(entry, ("promote",), f"alias '{value.promote}' is already promoted "
                             f"by model '{other.name}' ({other.file}:{other.line})",
                             "duplicate_name")
            return False
        promoted[value.promote] = entry
        return True

    def check_metadata(self, entry: _Entry) -> bool:
        """No metadata key uses the prefix ftops writes its own job labels under."""
        reserved = [k for k in entry.value.metadata if k.startswith("ftops_")]
        for key in reserved:
            self.problems.at(
                entry,
                ("metadata", key),
                "keys starting with 'ftops_' are reserved for ftops",
                "invalid_value",
            )
        return not reserved

    def check_method_supported(self, entry: _Entry, info: catalog.ModelInfo | None) -> bool:
        """A base model the catalog knows supports the method (an unknown one is trusted)."""
        method = entry.value.method
        if info is None or method in info.methods:
            return True
        written = entry.value.model_fields_set
        self.problems.at(
            entry,
            # blame the method when it was written, else the base that does not support the default
            ("method",) if "method" in written else ("base",),
            f"{info.id} does not support method {method} (supports: {', '.join(info.methods)})",
            "unsupported_method",
        )
        return False

    def resolved_model(
        self,
        entry: _Entry,
        parent: str | None,
        base_model: str,
        training_path: Path,
        validation_path: Path | None,
        hyper: dict[str, int | float | str],
        info: catalog.ModelInfo | None,
    ) -> ResolvedModel:
        """The checked entry as a ResolvedModel, with base facts from the catalog when known."""
        value: _Model = entry.value
        known, provider = catalog.load(), self.providers.get(value.provider)
        kind = provider.type if provider else None  # prices and limits are the provider's
        training = "full" if value.options.get("lora") is False else "lora"
        price = self.prices.get(self.canonical(base_model),
                                known.training_price(kind, base_model, value.method, training))
        return ResolvedModel(
            name=entry.name,
            base_model=base_model,
            parent=parent,
            training=value.training,
            training_path=training_path,
            validation=value.validation,
            validation_path=validation_path,
            method=value.method,
            hyperparameters=hyper,
            grader=value.grader,
            suffix=value.suffix,
            seed=value.seed,
            metadata=dict(value.metadata),
            provider=value.provider,
            eval=value.eval,
            promote=value.promote,
            max_cost_usd=value.max_cost_usd,
            encoding=info.encoding if info else DEFAULT_ENCODING,
            example_token_limit=known.example_token_limit(kind, base_model, value.method),
            training_usd_per_1m=price,
            file=entry.file,
            line=entry.line,
            key_lines={key: entry.line_of(key) for key in sorted(value.model_fields_set)},
            adopt=(value.adopt.job, value.adopt.fingerprint) if value.adopt else None,
            migrates=value.migrates,
            **azure.resolved(entry, self.providers.get(value.provider)),
        )


def _written_hyperparameters(value: _Model) -> dict[str, int | float | str]:
    """Only the keys written, with values as written (2 stays 2), in the format's order."""
    chosen = value.hyperparameters or _Hyperparameters()
    return {k: getattr(chosen, k) for k in _HP_KEYS if k in chosen.model_fields_set}
