"""What a pull request changes in a JSONL dataset: examples added, removed and changed.

An example is one non-blank JSONL line. Lines present on both sides are matched by content, as a
multiset, so reordering changes nothing. Of the remaining lines, a removed and an added example
with the same first user message (``messages``, or ``input.messages`` for preference data) are
paired, in file order, as one *changed* example: the usual edit is a corrected answer to the same
prompt. Lines that cannot be paired (no user message, or invalid JSON, which validation reports
elsewhere) count as removed and added.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftops import gitinfo
from ftops.errors import DataError, FtopsError

CountTokens = Callable[[str], int]  # e.g. tokens.TokenCounter.text, or a per-example count
_SNIPPET = 200


@dataclass(frozen=True)
class Example:
    line: int  # 1-based line number in its version of the file
    text: str


@dataclass(frozen=True)
class ChangedExample:
    before: Example
    after: Example


@dataclass(frozen=True)
class DatasetDiff:
    path: str  # relative to the repository root
    base_sha: str
    head_sha: str | None  # None: the working tree
    added: tuple[Example, ...]
    removed: tuple[Example, ...]
    changed: tuple[ChangedExample, ...]
    unchanged: int
    token_delta: int | None  # None when no token counter was given

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def dataset_diff(
    repo_root: Path,
    path: str | Path,
    base_sha: str,
    head_sha: str | None = None,
    *,
    count_tokens: CountTokens | None = None,
) -> DatasetDiff:
    """Compare ``path`` at ``base_sha`` with ``head_sha`` (default: the working tree).

    ``count_tokens(line)`` gives the tokens of one example; it is called only for lines that differ
    and the delta is tokens(after) - tokens(before). A file missing on one side counts as empty.
    """
    rel = gitinfo.repo_path(repo_root, repo_root / path)
    before = gitinfo.file_at(repo_root, rel, base_sha)
    if head_sha is None:
        file = repo_root / rel
        after = file.read_bytes() if file.is_file() else None
    else:
        after = gitinfo.file_at(repo_root, rel, head_sha)
    if before is None and after is None:
        at = head_sha[:12] if head_sha else "the working tree"
        raise FtopsError(f"{rel} exists neither at {base_sha[:12]} nor in {at}")
    old, new = _examples(rel, before), _examples(rel, after)
    common = Counter(e.text for e in old) & Counter(e.text for e in new)
    removed, added = _without(old, common), _without(new, common)
    changed, removed, added = _pair(removed, added)
    delta = None
    if count_tokens is not None:
        delta = (
            sum(count_tokens(e.text) for e in added)
            - sum(count_tokens(e.text) for e in removed)
            + sum(count_tokens(c.after.text) - count_tokens(c.before.text) for c in changed)
        )
    return DatasetDiff(
        path=rel,
        base_sha=base_sha,
        head_sha=head_sha,
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        unchanged=sum(common.values()),
        token_delta=delta,
    )


def dataset_diff_markdown(diff: DatasetDiff, *, max_examples: int = 5) -> str:
    """One summary line, then up to ``max_examples`` of each kind in a collapsed diff block."""
    counts = (
        f"+{len(diff.added)} added, -{len(diff.removed)} removed, ~{len(diff.changed)} changed, "
        f"{diff.unchanged} unchanged"
    )
    if diff.token_delta is not None:
        counts += f"; tokens {diff.token_delta:+,}"
    head = f"`{diff.path}`: {counts}"
    if not diff.has_changes:
        return f"{head}\n"
    shown: list[str] = []
    for example in diff.removed[:max_examples]:
        shown.append(f"- {example.line}: {_snippet(example.text)}")
    for example in diff.added[:max_examples]:
        shown.append(f"+ {example.line}: {_snippet(example.text)}")
    for change in diff.changed[:max_examples]:
        shown.append(f"- {change.before.line}: {_snippet(change.before.text)}")
        shown.append(f"+ {change.after.line}: {_snippet(change.after.text)}")
    sizes = (len(diff.removed), len(diff.added), len(diff.changed))
    hidden = sum(max(0, n - max_examples) for n in sizes)
    more = f"\n{hidden} more not shown.\n" if hidden else ""
    fence = "`" * max(3, _longest_backtick_run(shown) + 1)
    body = "\n".join(shown)
    return (
        f"{head}\n\n<details><summary>Examples (line numbers before/after)</summary>\n\n"
        f"{fence}diff\n{body}\n{fence}\n{more}\n</details>\n"
    )


def _examples(rel: str, data: bytes | None) -> list[Example]:
    if data is None:
        return []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError("not valid UTF-8", path=rel, line=line) from None
    return [
        Example(number, line.rstrip("\r"))
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip()
    ]


def _without(examples: list[Example], common: Counter[str]) -> list[Example]:
    """``examples`` minus the first ``common[text]`` occurrences of each text."""
    skip = Counter(common)
    out = []
    for example in examples:
        if skip[example.text] > 0:
            skip[example.text] -= 1
        else:
            out.append(example)
    return out


def _pair(
    removed: list[Example], added: list[Example]
) -> tuple[list[ChangedExample], list[Example], list[Example]]:
    waiting: defaultdict[str, deque[Example]] = defaultdict(deque)
    for example in removed:
        key = _prompt_key(example.text)
        if key is not None:
            waiting[key].append(example)
    changed, still_added = [], []
    for example in added:
        key = _prompt_key(example.text)
        if key is not None and waiting[key]:
            changed.append(ChangedExample(waiting[key].popleft(), example))
        else:
            still_added.append(example)
    paired = {c.before for c in changed}
    return changed, [e for e in removed if e not in paired], still_added


def _prompt_key(text: str) -> str | None:
    """The first user message of a chat or preference example, as canonical JSON."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    messages = record.get("messages")
    if messages is None and isinstance(record.get("input"), dict):
        messages = record["input"].get("messages")
    if not isinstance(messages, list):
        return None
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            return json.dumps(message.get("content"), sort_keys=True)
    return None


def _snippet(text: str) -> str:
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def _longest_backtick_run(lines: list[str]) -> int:
    longest = 0
    for line in lines:
        run = 0
        for char in line:
            run = run + 1 if char == "`" else 0
            longest = max(longest, run)
    return longest
