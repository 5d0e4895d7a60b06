"""Specs: every YAML file under a directory, merged into one namespace, validated and resolved.

``load_specs`` returns a :class:`Spec` of frozen dataclasses or raises one FtopsError carrying every
problem found (``path:line: message``). ``collect_specs`` returns what resolved plus the problems,
for ``ftops validate``. The pydantic models below are private; they also generate the JSON Schema.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError

from ftops import catalog, gitinfo
from ftops.errors import Diagnostic, FtopsError

DEFAULT_PROVIDER = "openai"
DEFAULT_ENCODING = "o200k_base"
SCHEMA_PATH = "schema/ftops.schema.json"
METHOD_FORMAT = {"supervised": "chat", "dpo": "preference", "reinforcement": "reinforcement"}
_COMMON_HP = ("n_epochs", "batch_size", "learning_rate_multiplier")
METHOD_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "supervised": _COMMON_HP,
    "dpo": (*_COMMON_HP, "beta"),
    "reinforcement": (
        *_COMMON_HP,
        "reasoning_effort",
        "compute_multiplier",
        "eval_interval",
        "eval_samples",
    ),
}
_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ENV_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
_URL_RE = r"^https?://\S+$"
_CHECK_RE = r"^(exact_match|contains|json_valid|json_schema:.+|regex:.+)$"
_SECTIONS = ("datasets", "base_models", "models", "evals", "providers", "pricing")


# ---------------------------------------------------------------------------------------------
# The format (private pydantic models; the JSON Schema is generated from them)


def _auto(
    kind: type[int] | type[float],
    *,
    low: float,
    high: float | None = None,
    low_exclusive: bool = False,
) -> Any:
    """A hyperparameter: the string "auto" or a number in range, with one clear error message."""
    number: dict[str, Any] = {"type": "integer" if kind is int else "number"}
    number["exclusiveMinimum" if low_exclusive else "minimum"] = low
    if high is not None:
        number["maximum"] = high
    bound = f"> {low:g}" if low_exclusive else f">= {low:g}"
    if high is not None:
        bound += f" and <= {high:g}"
    wanted = f"'auto' or {'an integer' if kind is int else 'a number'} {bound}"

    def check(value: object) -> object:
        if value == "auto" and isinstance(value, str):
            return value
        numeric = isinstance(value, int) or (kind is float and isinstance(value, float))
        if (
            isinstance(value, bool)
            or not numeric
            or (value <= low if low_exclusive else value < low)  # type: ignore[operator]
            or (high is not None and value > high)  # type: ignore[operator]
        ):
            raise PydanticCustomError("auto_or_number", "must be {wanted}", {"wanted": wanted})
        return value

    schema = {"anyOf": [{"const": "auto"}, number], "default": "auto"}
    return Annotated[kind | Literal["auto"], PlainValidator(check), WithJsonSchema(schema)]


_Name = Annotated[str, Field(pattern=_NAME_RE)]
_Ref = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, model_title_generator=lambda cls: cls.__name__.lstrip("_")
    )


class _SchemaGenerator(GenerateJsonSchema):
    def normalize_name(self, name: str) -> str:
        return super().normalize_name(name).lstrip("_")


class _Dataset(_Strict):
    """A JSONL training file, identified remotely by the SHA-256 of its bytes."""

    path: str = Field(
        min_length=1,
        description="Relative to this spec file; must stay inside the repository.",
    )
    format: Literal["chat", "preference", "reinforcement"] = Field(
        "chat", description="chat for supervised, preference for dpo, reinforcement for RFT."
    )


class _Hyperparameters(_Strict):
    """Each value may be "auto". dpo adds beta; reinforcement adds its four own."""

    n_epochs: _auto(int, low=1, high=50) = "auto"  # type: ignore[valid-type]
    batch_size: _auto(int, low=1, high=256) = "auto"  # type: ignore[valid-type]
    learning_rate_multiplier: _auto(float, low=0, low_exclusive=True) = "auto"  # type: ignore[valid-type]
    beta: _auto(float, low=0, high=2, low_exclusive=True) = Field(  # type: ignore[valid-type]
        "auto", description="dpo only."
    )
    reasoning_effort: Literal["default", "low", "medium", "high"] = Field(
        "default", description="reinforcement only."
    )
    compute_multiplier: _auto(float, low=0.00001, high=10, low_exclusive=True) = Field(  # type: ignore[valid-type]
        "auto", description="reinforcement only."
    )
    eval_interval: _auto(int, low=1) = Field("auto", description="reinforcement only.")  # type: ignore[valid-type]
    eval_samples: _auto(int, low=1) = Field("auto", description="reinforcement only.")  # type: ignore[valid-type]


_HP_KEYS = tuple(_Hyperparameters.model_fields)


class _Adopt(_Strict):
    """Binds a job created outside ftops to a models entry, for the fingerprint it was made with.

    Job metadata cannot be changed after creation, so the binding lives in the spec; a spec
    change gives a new fingerprint and the adopted job becomes the previous one (``replace``).
    """

    job: str = Field(pattern=r"^\S+$", description="The job id.")
    fingerprint: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="The model's fingerprint when it was adopted."
    )


class _Model(_Strict):
    """A fine-tuned model to train."""

    base: _Ref = Field(
        description="A base_models alias, another models entry (chaining), or a literal model id."
    )
    training: _Ref = Field(description="A datasets entry.")
    validation: _Ref | None = Field(None, description="A datasets entry.")
    method: Literal["supervised", "dpo", "reinforcement"] = "supervised"
    hyperparameters: _Hyperparameters | None = None
    grader: dict[str, Any] | None = Field(
        None,
        description="reinforcement only (and required there): the API's grader object.",
    )
    suffix: str | None = Field(None, min_length=1, max_length=64)
    seed: int | None = Field(None, ge=0, le=2147483647)
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] = (
        Field(default_factory=dict, max_length=16, description="Labels copied onto the job.")
    )
    max_cost_usd: float | None = Field(
        None, ge=0, description="Budget guard: fail when the estimated training cost exceeds it."
    )
    provider: _Ref = Field(DEFAULT_PROVIDER, description="A providers entry.")
    eval: _Ref | None = Field(None, description="An evals entry run after training.")
    promote: _Name | None = Field(
        None, description="Alias moved to this model only when its eval passes."
    )
    adopt: _Adopt | None = Field(
        None, description="A job ftops did not create, adopted as this model's (`ftops import`)."
    )


class _Eval(_Strict):
    """Compares a trained model with its base on held-out data."""

    dataset: _Ref = Field(
        description="A chat datasets entry; each line's last assistant message is the reference."
    )
    checks: list[Annotated[str, Field(pattern=_CHECK_RE)]] = Field(
        min_length=1,
        description="exact_match | contains | json_valid | json_schema:<path> | regex:<pattern>; "
        "an example passes when every check passes.",
    )
    compare_with: _Ref = Field("base", description='"base" (default), "none", or a models entry.')
    min_score: float | None = Field(
        None, ge=0, le=1, description="Pass threshold: fraction of examples passing every check."
    )
    min_improvement: float | None = Field(
        None, ge=-1, le=1, description="The score must beat the comparison's by this much."
    )


class _Provider(_Strict):
    """Where jobs run; credentials come from the environment variable named by api_key_env."""

    type: Literal["openai", "azure"] = "openai"
    base_url: str | None = Field(
        None, pattern=_URL_RE, description="openai type: any OpenAI-compatible API."
    )
    organization: str | None = Field(None, min_length=1, description="openai type only.")
    project: str | None = Field(None, min_length=1, description="openai type only.")
    endpoint: str | None = Field(None, pattern=_URL_RE, description="azure type only.")
    api_version: str | None = Field(None, min_length=1, description="azure type only.")
    api_key_env: str | None = Field(
        None, pattern=_ENV_RE, description="The NAME of an environment variable holding the key."
    )


class _Price(_Strict):
    training_usd_per_1m: float = Field(ge=0)


class _SpecFile(_Strict):
    """An ftops spec file. All files under the spec directory share one namespace."""

    model_config = ConfigDict(title="ftops spec")

    datasets: dict[_Name, _Dataset] = Field(default_factory=dict)
    base_models: dict[_Name, _Ref] = Field(default_factory=dict, description="Alias -> model id.")
    models: dict[_Name, _Model] = Field(default_factory=dict)
    evals: dict[_Name, _Eval] = Field(default_factory=dict)
    providers: dict[_Name, _Provider] = Field(
        default_factory=dict, description='Default: one provider "openai" from the SDK env vars.'
    )
    pricing: dict[_Ref, _Price] = Field(
        default_factory=dict, description="Base model id -> price; overrides ftops' catalog."
    )


_ENTRY_TYPES: dict[str, type[BaseModel] | None] = {
    "datasets": _Dataset,
    "base_models": None,
    "models": _Model,
    "evals": _Eval,
    "providers": _Provider,
    "pricing": _Price,
}
_SINGULAR = {
    "datasets": "dataset",
    "base_models": "base model alias",
    "models": "model",
    "evals": "eval",
    "providers": "provider",
    "pricing": "price",
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file, generated from the models that validate it."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **_SpecFile.model_json_schema(schema_generator=_SchemaGenerator),
    }


def schema_text() -> str:
    """``json_schema()`` as deterministic text, the content of ``schema/ftops.schema.json``."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------
# The resolved view (public)


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


@dataclass(frozen=True)
class ResolvedModel:
    """A models entry with every reference resolved; base facts are the chain's root's."""

    name: str
    base_model: str  # the literal id at the root of the chain
    parent: str | None  # the declared model this one is trained on, if any
    training: str
    training_path: Path
    validation: str | None
    validation_path: Path | None
    method: str
    hyperparameters: dict[str, int | float | str]  # only keys written in the spec; "auto" kept
    grader: dict[str, Any] | None
    suffix: str | None
    seed: int | None
    metadata: dict[str, str]
    provider: str
    eval: str | None
    promote: str | None
    max_cost_usd: float | None
    encoding: str
    example_token_limit: int | None  # None when the base model is not in the catalog
    training_usd_per_1m: float | None  # pricing: override, else catalog, else None
    file: str
    line: int
    key_lines: dict[str, int] = field(default_factory=dict)  # line of each key written
    adopt: tuple[str, str] | None = None  # (job id, fingerprint) of an adopted job

    @property
    def n_epochs(self) -> int | None:
        """The explicit epoch count, or None for "auto"/unset."""
        value = self.hyperparameters.get("n_epochs")
        return value if isinstance(value, int) else None

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


@dataclass(frozen=True)
class Spec:
    root: Path  # the repository root dataset paths must stay inside
    files: tuple[str, ...]
    datasets: tuple[Dataset, ...]
    models: tuple[ResolvedModel, ...]  # parents before children, else by name
    evals: tuple[Eval, ...]
    providers: tuple[Provider, ...]

    def resolved_models(self) -> tuple[ResolvedModel, ...]:
        """Every model, in training order: a parent always comes before its children."""
        return self.models

    def model(self, name: str) -> ResolvedModel | None:
        return next((m for m in self.models if m.name == name), None)

    def dataset(self, name: str) -> Dataset | None:
        return next((d for d in self.datasets if d.name == name), None)


# ---------------------------------------------------------------------------------------------
# Reading files


class _Loader(yaml.SafeLoader):
    pass


@dataclass
class _Entry:
    """One named entry as written.

    ``value`` is None when it failed validation; when only some keys were wrong, it holds the rest
    and ``broken`` is set, so references are still checked but nothing is resolved from it.
    """

    section: str
    name: str
    file: str
    path: Path
    line: int
    node: yaml.Node
    value: Any = None
    broken: bool = False

    def line_of(self, *loc: str | int) -> int:
        """The line of the deepest key of ``loc`` that exists in the YAML."""
        return _line_at(self.node, loc, self.line)

    def where(self, *loc: str | int) -> str:
        return ".".join([self.section, self.name, *map(str, loc)])


class _Problems:
    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def add(self, file: str, line: int | None, message: str, code: str) -> None:
        self.items.append(Diagnostic(path=file, line=line, message=message, code=code))

    def at(self, entry: _Entry, loc: Sequence[str | int], message: str, code: str) -> None:
        self.add(entry.file, entry.line_of(*loc), f"{entry.where(*loc)}: {message}", code)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _line_at(node: yaml.Node, loc: Iterable[str | int], line: int) -> int:
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part)
                ),
                None,
            )
            if found is None:
                return line
            line, node = _line(found[0]), found[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = _line(node)
        else:
            return line
    return line


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _duplicate_keys(node: yaml.Node, seen: set[int]) -> Iterator[tuple[yaml.Node, str, int]]:
    """(second key node, key, line of the first) for each key repeated in one mapping."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                ident = (key.tag, key.value)
                if ident in first:
                    yield key, key.value, first[ident]
                else:
                    first[ident] = _line(key)
            yield from _duplicate_keys(key, seen)
            yield from _duplicate_keys(value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item, seen)


def _spec_files(path: Path, problems: _Problems) -> list[tuple[Path, str]]:
    """(file, display path) for every YAML file under ``path``, sorted; hidden ones skipped."""
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except OSError as exc:  # a name too long, say
        problems.add(str(path), None, f"unusable path: {exc.strerror}", "not_found")
        return []
    if is_file:
        return [(path, str(path))]
    if not is_dir:
        problems.add(str(path), None, "no such file or directory", "not_found")
        return []
    found = sorted(
        p.relative_to(path)
        for p in path.rglob("*")
        if p.suffix in (".yaml", ".yml") and p.is_file()
    )
    files = [
        (path / rel, str(path / rel))
        for rel in found
        if not any(part.startswith(".") for part in rel.parts)
    ]
    if not files:
        problems.add(str(path), None, "no *.yaml or *.yml spec files found", "not_found")
    return files


def _read_file(path: Path, display: str, problems: _Problems) -> list[_Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(display, None, f"cannot read the file: {exc}", "unreadable")
        return []
    entries: list[_Entry] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            document = loader.get_node()
            if document is not None:
                entries += _read_document(document, loader, path, display, problems)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}: {problem}" if context else problem
        # an error at the end of the stream is reported on the last line, not one past it
        line = min(mark.line + 1, max(text.count("\n"), 1)) if mark else None
        problems.add(display, line, f"invalid YAML: {detail}", "yaml_syntax")
    finally:
        loader.dispose()
    return entries


def _read_document(
    document: yaml.Node, loader: _Loader, path: Path, display: str, problems: _Problems
) -> list[_Entry]:
    for key, name, first in _duplicate_keys(document, set()):
        problems.add(
            display,
            _line(key),
            f"duplicate key '{name}' (first defined at line {first})",
            "duplicate_key",
        )
    if isinstance(document, yaml.ScalarNode) and document.tag == "tag:yaml.org,2002:null":
        return []
    if not isinstance(document, yaml.MappingNode):
        problems.add(
            display,
            _line(document),
            f"a spec file must be a mapping with keys {', '.join(_SECTIONS)}",
            "type",
        )
        return []
    entries: list[_Entry] = []
    for section, section_node, section_live in _pairs(document, loader):
        if section not in _SECTIONS:
            problems.add(
                display,
                _line(section_node[0]),
                f"unknown key '{section}'{_hint(section, _SECTIONS)}",
                "unknown_key",
            )
            continue
        body = section_node[1]
        if isinstance(body, yaml.ScalarNode) and body.tag == "tag:yaml.org,2002:null":
            continue
        if not isinstance(body, yaml.MappingNode):
            problems.add(
                display,
                _line(section_node[0]),
                f"{section}: must be a mapping of names to entries",
                "type",
            )
            continue
        for name, (key_node, value_node), live in _pairs(body, loader):
            entry = _Entry(section, name, display, path, _line(key_node), value_node)
            _validate_entry(entry, loader, problems)
            if section_live and live:
                entries.append(entry)
    return entries


def _pairs(
    node: yaml.MappingNode, loader: _Loader
) -> Iterator[tuple[str, tuple[yaml.Node, yaml.Node], bool]]:
    """(key, (key node, value node), live), merge keys applied, in order.

    Of a key written twice only the last is live; the earlier one is still yielded so that its
    own problems are reported in the same run (the duplicate itself is ``_duplicate_keys``'s).
    Merged keys overridden by a key written in the mapping are not yielded: that is intended.
    """
    written = {id(key) for key, _ in node.value}
    loader.flatten_mapping(node)
    pairs = [(str(loader.construct_object(k, deep=True)), (k, v)) for k, v in node.value]
    last = {key: index for index, (key, _) in enumerate(pairs)}
    for index, (key, nodes) in enumerate(pairs):
        live = last[key] == index
        if live or id(nodes[0]) in written:
            yield key, nodes, live


def _validate_entry(entry: _Entry, loader: _Loader, problems: _Problems) -> None:
    if not re.match(_NAME_RE, entry.name) and entry.section != "pricing":
        problems.add(
            entry.file,
            entry.line,
            f"{entry.section}: invalid name '{entry.name}' (use letters, digits, '.', "
            "'_' and '-', at most 64 characters, starting with a letter or digit)",
            "invalid_name",
        )
        return
    raw = loader.construct_object(entry.node, deep=True)
    kind = _ENTRY_TYPES[entry.section]
    if kind is None:  # base_models: alias -> model id
        if isinstance(raw, str) and raw:
            entry.value = raw
        else:
            problems.at(entry, (), "must be a model id (a non-empty string)", "type")
        return
    try:
        entry.value = kind.model_validate(raw)
        return
    except ValidationError as exc:
        errors = exc.errors()
    for error in errors:
        _report_pydantic(entry, kind, error, problems)
    if isinstance(raw, dict):  # keep what is valid, so its references are checked too
        bad = {error["loc"][0] for error in errors if error["loc"]}
        try:
            entry.value = kind.model_validate({k: v for k, v in raw.items() if k not in bad})
            entry.broken = True
        except ValidationError:
            pass


def _report_pydantic(entry: _Entry, kind: type[BaseModel], error: Any, problems: _Problems) -> None:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        hint = _hint(str(loc[-1]), _fields_at(kind, loc[:-1]))
        where = entry.where(*loc[:-1])
        message = f"{where}: unknown key '{loc[-1]}'{hint}"
        problems.add(entry.file, entry.line_of(*loc), message, "unknown_key")
    elif error["type"] == "missing":
        problems.at(entry, loc[:-1], f"missing required key '{loc[-1]}'", "missing_key")
    elif error["type"] == "model_type":
        problems.at(entry, loc, "must be a mapping", "type")
    else:
        message = error["msg"][:1].lower() + error["msg"][1:]
        if error["type"] == "string_type" and isinstance(error["input"], (int, float, dt.date)):
            message += f" (YAML reads it as {type(error['input']).__name__}: put it in quotes)"
        problems.at(entry, loc, message, "invalid_value")


def _fields_at(kind: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, ...]:
    """The keys allowed at ``loc`` inside ``kind`` (for "did you mean" hints)."""
    current: Any = kind
    for part in loc:
        info = current.model_fields.get(part) if isinstance(part, str) else None
        current = _model_in(info.annotation) if info else None
        if current is None:
            return ()
    return tuple(current.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)


# ---------------------------------------------------------------------------------------------
# Merging and resolving


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
        raise FtopsError("no spec path given")
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
    """The resolved spec; raises FtopsError with every problem as a diagnostic."""
    spec, problems = collect_specs(paths)
    if problems:
        more = len(problems) - 1
        raise FtopsError(
            str(problems[0]),
            hint=f"and {more} more: run `ftops validate` to list them all" if more else None,
            diagnostics=problems,
        )
    return spec


def _declare(entry: _Entry, named: dict[str, dict[str, _Entry]], problems: _Problems) -> None:
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


class _Resolver:
    def __init__(self, root: Path, named: dict[str, dict[str, _Entry]], problems: _Problems):
        self.root = root
        self.named = named
        self.problems = problems
        self.datasets: dict[str, Dataset] = {}
        self.evals: dict[str, Eval] = {}
        self.providers: dict[str, Provider] = {}
        self.prices: dict[str, float] = {}
        self.models: dict[str, ResolvedModel] = {}

    def valid(self, section: str) -> Iterator[_Entry]:
        for name in sorted(self.named[section]):
            entry = self.named[section][name]
            if entry.value is not None:
                yield entry

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

    # -- references

    def ref(self, entry: _Entry, loc: tuple[str, ...], section: str, name: str) -> _Entry | None:
        """The entry ``name`` refers to; reports it when undefined. None also when it is invalid."""
        target = self.named[section].get(name)
        if target is None:
            if not (section == "providers" and name == DEFAULT_PROVIDER):
                hint = _hint(name, self.named[section])
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
        azure = value.type == "azure"
        wrong = ["base_url", "organization", "project"] if azure else ["endpoint", "api_version"]
        needed = ["endpoint", "api_version"] if azure else []
        ok = not entry.broken
        for key in wrong:
            if getattr(value, key) is not None:
                self.problems.at(
                    entry, (key,), f"not used by providers of type {value.type}", "invalid_value"
                )
                ok = False
        for key in needed:
            if getattr(value, key) is None:
                self.problems.at(
                    entry, (), f"missing required key '{key}' (type azure)", "missing_key"
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
            self.problems.at(entry, ("min_improvement",), "needs a comparison: compare_with is "
                             "none", "invalid_value")

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
                    self.problems.at(entry, ("checks", index), f"no such file in the repository: "
                                     f"{arg}", "file_not_found")
                    continue
                try:
                    json.loads(full.read_text(encoding="utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    self.problems.at(entry, ("checks", index), f"{arg} is not JSON: {exc}",
                                     "invalid_value")
                    continue
                schemas[check] = full
        return schemas

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
        value: _Model = entry.value
        if parent is not None:
            parent_model = self.models.get(parent)
            base_model = parent_model.base_model if parent_model else None
        else:
            alias = self.named["base_models"].get(value.base)
            base_model = value.base if alias is None else alias.value
        # A broken entry or an unresolved parent is still checked, but never resolved.
        ok = base_model is not None and not entry.broken

        def fail(loc: tuple[str, ...], message: str, code: str) -> None:
            nonlocal ok
            ok = False
            self.problems.at(entry, loc, message, code)

        paths: dict[str, Path | None] = {"training": None, "validation": None}
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
                fail(
                    (key,),
                    f"dataset '{name}' has format {dataset.format}, but method "
                    f"{value.method} needs format {wanted}",
                    "format_mismatch",
                )
        if value.validation is not None and value.validation == value.training:
            fail(("validation",), "must be a different dataset than training", "invalid_value")

        chosen = value.hyperparameters or _Hyperparameters()
        # Only the keys written, with values as written (2 stays 2), in the format's order.
        hyper = {k: getattr(chosen, k) for k in _HP_KEYS if k in chosen.model_fields_set}
        allowed = METHOD_HYPERPARAMETERS[value.method]
        for key in hyper:
            if key not in allowed:
                users = [m for m, keys in METHOD_HYPERPARAMETERS.items() if key in keys]
                fail(
                    ("hyperparameters", key),
                    f"applies only to method {' or '.join(users)}, not {value.method}",
                    "invalid_hyperparameter",
                )
        if value.method == "reinforcement" and value.grader is None:
            fail(("method",), "method reinforcement needs a `grader:`", "missing_key")
        if value.method != "reinforcement" and value.grader is not None:
            fail(("grader",), "applies only to method reinforcement", "invalid_value")

        if self.ref(entry, ("provider",), "providers", value.provider) is None and (
            value.provider not in self.providers
        ):
            ok = False
        if value.eval is not None and (
            self.ref(entry, ("eval",), "evals", value.eval) is None or value.eval not in self.evals
        ):
            ok = False
        if value.promote is not None:
            if value.eval is None:
                fail(
                    ("promote",),
                    "needs an `eval:`: promotion happens only when it passes",
                    "missing_key",
                )
            elif (other := promoted.get(value.promote)) is not None:
                fail(
                    ("promote",),
                    f"alias '{value.promote}' is already promoted by model "
                    f"'{other.name}' ({other.file}:{other.line})",
                    "duplicate_name",
                )
            else:
                promoted[value.promote] = entry
        reserved = [k for k in value.metadata if k.startswith("ftops_")]
        for key in reserved:
            fail(
                ("metadata", key),
                "keys starting with 'ftops_' are reserved for ftops",
                "invalid_value",
            )

        info = catalog.load().model(base_model) if base_model else None
        if info is not None and value.method not in info.methods:
            fail(
                ("method",) if "method" in entry.value.model_fields_set else ("base",),
                f"{info.id} does not support method {value.method} "
                f"(supports: {', '.join(info.methods)})",
                "unsupported_method",
            )
        if not ok or base_model is None or paths["training"] is None:
            return None
        price = self.prices.get(
            self.canonical(base_model), info.training_usd_per_1m if info else None
        )
        written = entry.value.model_fields_set
        key_lines = {key: entry.line_of(key) for key in sorted(written)}
        return ResolvedModel(
            name=entry.name,
            base_model=base_model,
            parent=parent,
            training=value.training,
            training_path=paths["training"],
            validation=value.validation,
            validation_path=paths["validation"],
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
            example_token_limit=info.example_token_limit if info else None,
            training_usd_per_1m=price,
            file=entry.file,
            line=entry.line,
            key_lines=key_lines,
            adopt=(value.adopt.job, value.adopt.fingerprint) if value.adopt else None,
        )
