from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from ftops.datadiff import ChangedExample, Example, dataset_diff, dataset_diff_markdown
from ftops.errors import FtopsError

WHO = git.Actor("Test", "test@example.com")


def chat(user: str, answer: str) -> str:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return json.dumps({"messages": messages})


def write(root: Path, rel: str, lines: list[str]) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def commit(repo: git.Repo) -> str:
    repo.git.add("--all")
    return repo.index.commit("c", author=WHO, committer=WHO).hexsha


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    return git.Repo.init(tmp_path / "repo")


def root_of(repo: git.Repo) -> Path:
    return Path(repo.working_tree_dir or "").resolve()


A, B, C, D = chat("a?", "A"), chat("b?", "B"), chat("c?", "C"), chat("d?", "D")
C2 = chat("c?", "C, corrected")


def test_added_removed_changed_between_commits(repo: git.Repo) -> None:
    root = root_of(repo)
    write(root, "data/train.jsonl", [A, B, C])
    base = commit(repo)
    write(root, "data/train.jsonl", [C2, B, "", D])  # A removed, C changed, B moved, D added
    head = commit(repo)
    diff = dataset_diff(root, "data/train.jsonl", base, head, count_tokens=len)
    assert diff.path == "data/train.jsonl" and (diff.base_sha, diff.head_sha) == (base, head)
    assert diff.removed == (Example(1, A),)
    assert diff.added == (Example(4, D),)
    assert diff.changed == (ChangedExample(Example(3, C), Example(1, C2)),)
    assert diff.unchanged == 1 and diff.has_changes
    assert diff.token_delta == len(D) - len(A) + len(C2) - len(C)


def test_working_tree_is_the_default_head(repo: git.Repo) -> None:
    root = root_of(repo)
    write(root, "train.jsonl", [A, B])
    base = commit(repo)
    write(root, "train.jsonl", [A, B, B])
    diff = dataset_diff(root, root / "train.jsonl", base)
    assert diff.head_sha is None
    assert diff.added == (Example(3, B),) and diff.unchanged == 2
    assert diff.token_delta is None


def test_new_and_deleted_datasets(repo: git.Repo) -> None:
    root = root_of(repo)
    write(root, "old.jsonl", [A])
    base = commit(repo)
    (root / "old.jsonl").unlink()
    write(root, "new.jsonl", [B, C])
    created = dataset_diff(root, "new.jsonl", base)
    assert created.added == (Example(1, B), Example(2, C)) and created.removed == ()
    deleted = dataset_diff(root, "old.jsonl", base)
    assert deleted.removed == (Example(1, A),) and deleted.added == ()
    with pytest.raises(FtopsError, match=r"missing\.jsonl exists neither at"):
        dataset_diff(root, "missing.jsonl", base)


def test_preference_examples_pair_by_input_messages(repo: git.Repo) -> None:
    root = root_of(repo)

    def pref(preferred: str) -> str:
        return json.dumps(
            {
                "input": {"messages": [{"role": "user", "content": "q"}]},
                "preferred_output": [{"role": "assistant", "content": preferred}],
                "non_preferred_output": [{"role": "assistant", "content": "bad"}],
            }
        )

    write(root, "pref.jsonl", [pref("good")])
    base = commit(repo)
    write(root, "pref.jsonl", [pref("better")])
    diff = dataset_diff(root, "pref.jsonl", base)
    assert diff.changed == (ChangedExample(Example(1, pref("good")), Example(1, pref("better"))),)


def test_lines_without_a_user_message_are_not_paired(repo: git.Repo) -> None:
    root = root_of(repo)
    write(root, "d.jsonl", ["not json", '{"messages": [{"role": "system", "content": "s"}]}'])
    base = commit(repo)
    write(root, "d.jsonl", ["still not json", '{"messages": [{"role": "system", "content": "t"}]}'])
    diff = dataset_diff(root, "d.jsonl", base)
    assert diff.changed == ()
    assert [e.line for e in diff.removed] == [1, 2] and [e.line for e in diff.added] == [1, 2]


def test_duplicates_count_as_a_multiset(repo: git.Repo) -> None:
    root = root_of(repo)
    write(root, "d.jsonl", [A, A, A])
    base = commit(repo)
    write(root, "d.jsonl", [A])
    diff = dataset_diff(root, "d.jsonl", base)
    assert diff.removed == (Example(2, A), Example(3, A)) and diff.unchanged == 1


def test_unknown_base_commit_hints_at_fetch_depth(repo: git.Repo) -> None:
    root = root_of(repo)
    write(root, "d.jsonl", [A])
    commit(repo)
    with pytest.raises(FtopsError, match="fetch-depth: 0"):
        dataset_diff(root, "d.jsonl", "1" * 40)


def test_invalid_utf8_names_file_and_line(repo: git.Repo) -> None:
    root = root_of(repo)
    (root / "d.jsonl").write_bytes(b'{"a": 1}\n{"b": "\xff"}\n')
    base = commit(repo)
    with pytest.raises(FtopsError, match=r"^d\.jsonl:2: not valid UTF-8"):
        dataset_diff(root, "d.jsonl", base)


def test_markdown_exact(repo: git.Repo) -> None:
    root = root_of(repo)
    write(root, "t.jsonl", [A, B, C])
    base = commit(repo)
    write(root, "t.jsonl", [B, C2, D])
    diff = dataset_diff(root, "t.jsonl", base, count_tokens=lambda line: 10 if "D" in line else 0)
    assert dataset_diff_markdown(diff) == (
        "`t.jsonl`: +1 added, -1 removed, ~1 changed, 1 unchanged; tokens +10\n\n"
        "<details><summary>Examples (line numbers before/after)</summary>\n\n"
        "```diff\n"
        f"- 1: {A}\n"
        f"+ 3: {D}\n"
        f"- 3: {C}\n"
        f"+ 2: {C2}\n"
        "```\n\n</details>\n"
    )


def test_markdown_without_changes_and_with_many(repo: git.Repo) -> None:
    root = root_of(repo)
    write(root, "t.jsonl", [A])
    base = commit(repo)
    assert dataset_diff_markdown(dataset_diff(root, "t.jsonl", base)) == (
        "`t.jsonl`: +0 added, -0 removed, ~0 changed, 1 unchanged\n"
    )
    tick = "```" + "x" * 300
    write(root, "t.jsonl", [A, *(chat(f"q{i}", tick) for i in range(8))])
    out = dataset_diff_markdown(dataset_diff(root, "t.jsonl", base), max_examples=3)
    assert "\n5 more not shown.\n" in out
    assert "\n````diff\n" in out and out.count("\n+ ") == 3
    assert all(len(line) <= 210 for line in out.splitlines())
