"""Reading spec files into named entries, keeping the line of every key for error messages.

Each entry is validated against its pydantic model as it is read; problems are collected, never
raised, so that one run reports every problem in every file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from ftops.errors import Diagnostic, did_you_mean
from ftops.spec.schema import _ENTRY_TYPES, _NAME_RE, _SECTIONS


class _Loader(yaml.SafeLoader):
    pass


# libyaml's parser where PyYAML has it (about 15x faster; every command reads the specs); the
# pure one still reads a file libyaml refuses, so that syntax errors keep its wording. (Typed as
# SafeLoader: both have the node and constructor methods used here.)
_FastLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", _Loader)


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
        # A spec problem is always an error: any one of them stops plan and apply.
        self.items.append(Diagnostic("error", code, message, path=file, line=line))

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
    fast = _FastLoader(text)
    try:
        documents: list[yaml.Node | None] | None = list(_nodes(fast))
    except yaml.YAMLError:
        documents = None  # read again below, for the pure parser's words
    loader = fast if documents is not None else _Loader(text)
    try:
        for document in documents if documents is not None else _nodes(loader):
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
        fast.dispose()
        loader.dispose()
    return entries


def _nodes(loader: yaml.SafeLoader) -> Iterator[yaml.Node | None]:
    while loader.check_node():
        yield loader.get_node()


def _read_document(
    document: yaml.Node, loader: yaml.SafeLoader, path: Path, display: str, problems: _Problems
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
                f"unknown key '{section}'{did_you_mean(section, _SECTIONS)}",
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
    node: yaml.MappingNode, loader: yaml.SafeLoader
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


def _validate_entry(entry: _Entry, loader: yaml.SafeLoader, problems: _Problems) -> None:
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
        hint = did_you_mean(str(loc[-1]), _fields_at(kind, loc[:-1]))
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
