"""An eval dataset's prompts and reference replies, and the checks that score a reply."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from ftops.errors import FtopsError
from ftops.evals.results import Run, Scored

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


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def load_examples(path: Path) -> tuple[Example, ...]:
    """Each line's messages before its last assistant message, and that message as reference.
    The dataset was validated by ``ftops.project.load_project``; a line without a reply is
    skipped."""
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

