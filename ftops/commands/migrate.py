"""``ftops migrate``: successors of models whose base (or provider) is going away, written into
a NEW spec file: each trains on the same datasets on another provider and base, is evaluated
against the model it replaces, and takes over its alias only when that eval passes. Existing
spec files are never edited; nothing is sent to any provider."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ftops import catalog, migration
from ftops.errors import Diagnostic, FtopsError, UsageError
from ftops.spec import Spec, collect_specs, load_specs

_TYPES = ("openai", "azure", "nebius", "together", "fireworks")
# Provider types that cannot be declared without settings only the user knows.
_NEEDS = {"azure": "endpoint", "fireworks": "account"}


@dataclass(frozen=True)
class MigrateOptions:
    models: tuple[str, ...] = ()
    to: str = ""  # a providers entry, or a provider type
    base: str = ""
    specs: Path = Path("specs")
    out: Path | None = None  # default: <specs>/migrate-<provider>.yaml
    eval: str | None = None  # an evals entry (or a chat dataset) to compare on
    name: str | None = None  # the successor's name (one model only)
    dry_run: bool = False


@dataclass(frozen=True)
class MigrateRun:
    spec_file: Path
    text: str  # the file's content
    notes: tuple[str, ...]
    written: bool

    def to_text(self) -> str:
        notes = "".join(f"{line}\n" for line in self.notes)
        if not self.written:
            return f"# would write {self.spec_file} (--dry-run)\n{self.text}{notes}"
        return (f"{notes}wrote {self.spec_file}; run `ftops validate` and `ftops plan`, "
                "then commit it\n")


def _target(spec: Spec, to: str, base: str) -> migration.Target:
    """The providers entry named ``to`` (else the first of that type, else a new one) and the
    catalog's id of ``base``, which that provider must fine-tune."""
    chosen = next((p for p in spec.providers if p.name == to), None)
    chosen = chosen or next((p for p in spec.providers if p.type == to), None)
    declare = None
    if chosen is None:
        if to not in _TYPES:
            raise UsageError(f"--to {to}: neither a providers entry nor a provider type",
                             hint=f"types: {', '.join(_TYPES)}")
        if to in _NEEDS:
            raise FtopsError(f"--to {to}: a {to} provider needs {_NEEDS[to]}",
                             hint=f"declare a providers entry of type {to} first")
        declare = {"type": to}
    kind = chosen.type if chosen else to
    name = chosen.name if chosen else to
    info = catalog.load().fine_tunable(kind, base)
    if info is None:
        known = ", ".join(m.id for m in catalog.load().models_of(kind)) or "none known"
        raise FtopsError(f"--base {base}: provider {name} ({kind}) does not fine-tune it, "
                         f"as far as the catalog knows", hint=f"its bases: {known}")
    return migration.Target(name, kind, info.id, declare)


def _out_file(options: MigrateOptions, target: migration.Target) -> Path:
    """A .yaml file in the spec directory (so plan reads it) that does not exist yet."""
    specs = options.specs
    if not specs.is_dir():
        raise FtopsError(f"{specs} is not a directory; migrate adds a file to a spec directory")
    out = options.out or specs / f"migrate-{target.provider}.yaml"
    if out.suffix not in (".yaml", ".yml") or not out.resolve().is_relative_to(specs.resolve()):
        raise FtopsError(f"{out} is not a .yaml file in the spec directory {specs}",
                         hint="choose such an --out, so plan reads it")
    if out.exists():
        raise FtopsError(f"{out} exists; migrate writes a new spec file and edits none",
                         hint="pass another --out")
    return out


def _refuse(problems: list[Diagnostic]) -> FtopsError:
    """Every problem, one line each (the handler prints the diagnostics after the first)."""
    return FtopsError(str(problems[0]), diagnostics=tuple(problems))


def run(options: MigrateOptions) -> MigrateRun:
    if not options.models:
        raise UsageError("no model given", hint="ftops migrate MODEL... --to PROVIDER --base BASE")
    if options.name and len(options.models) > 1:
        raise UsageError("--name names one successor; give one MODEL with it")
    spec = load_specs(options.specs)
    unknown = sorted(n for n in options.models if spec.model(n) is None)
    if unknown:
        raise UsageError("no such model: " + ", ".join(unknown))
    target = _target(spec, options.to, options.base)
    out = _out_file(options, target)
    models = migration.with_ancestors(spec, options.models)
    names = {m.name: migration.successor_name(
        m.name, target, options.name if m.name in options.models else None) for m in models}
    taken = [m for n in names.values() if (m := spec.model(n)) is not None]
    if taken:
        raise FtopsError(f"model {taken[0].name} is declared already ({taken[0].file}:"
                         f"{taken[0].line}): migrated before?", hint="pass --name")
    problems = migration.fit_problems(spec, models, target)
    if problems:
        raise _refuse(problems)
    done, problems = migration.migrate(spec, models, target, names=names,
                                       eval_source=options.eval, out_dir=out.parent)
    if problems:
        raise _refuse(problems)
    extra = [f"also migrates {m.name}: {', '.join(c.name for c in models if c.parent == m.name)} "
             "chains on it" for m in models if m.name not in options.models]
    header = ("# Written by `ftops migrate`: successors trained on the same datasets elsewhere,\n"
              "# each evaluated against the model it migrates; an alias moves only when that\n"
              "# eval passes. Remove the originals (and this comment) once nothing calls them.\n")
    text = migration.render(done, header)
    notes = (*extra, *done.notes)
    if options.dry_run:
        return MigrateRun(out, text, notes, written=False)
    out.write_text(text, encoding="utf-8")
    _check_written(options.specs, out)
    return MigrateRun(out, text, notes, written=True)


def _check_written(specs: Path, out: Path) -> None:
    """The specs, read back with the new file, must validate; else the file is taken back."""
    _, problems = collect_specs(specs)
    if problems:
        out.unlink(missing_ok=True)
        raise FtopsError(f"the migration would not validate: {problems[0]}",
                         diagnostics=problems, hint="nothing was written")
