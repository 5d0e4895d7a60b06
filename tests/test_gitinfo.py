from __future__ import annotations

from pathlib import Path

import git
import pytest

from ftops import gitinfo
from ftops.errors import FtopsError
from ftops.gitinfo import BOT_AUTHOR, Author

SETUP = git.Actor("Setup", "setup@example.com")


def commit_all(repo: git.Repo, message: str) -> str:
    repo.git.add("--all")
    return repo.index.commit(message, author=SETUP, committer=SETUP).hexsha


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    r = git.Repo.init(tmp_path / "repo")
    root = Path(r.working_tree_dir or "")
    (root / "specs").mkdir()
    (root / "specs" / "models.yaml").write_text("models: {}\n")
    (root / "data").mkdir()
    (root / "data" / "train.jsonl").write_text('{"a": 1}\n')
    (root / "README.md").write_text("hello\n")
    commit_all(r, "initial")
    return r


def root_of(repo: git.Repo) -> Path:
    return Path(repo.working_tree_dir or "").resolve()


def test_repo_root_from_a_subdirectory(repo: git.Repo) -> None:
    assert gitinfo.repo_root(root_of(repo) / "specs") == root_of(repo)


def test_repo_root_outside_git(tmp_path: Path) -> None:
    with pytest.raises(FtopsError, match="is not inside a git repository"):
        gitinfo.repo_root(tmp_path)


def test_head_commit(repo: git.Repo, tmp_path: Path) -> None:
    assert gitinfo.head_commit(root_of(repo)) == repo.head.commit.hexsha
    empty = git.Repo.init(tmp_path / "empty")
    with pytest.raises(FtopsError, match="has no commit yet"):
        gitinfo.head_commit(Path(empty.working_tree_dir or ""))


def test_repo_path(repo: git.Repo, tmp_path: Path) -> None:
    root = root_of(repo)
    assert gitinfo.repo_path(root, root / "data" / "train.jsonl") == "data/train.jsonl"
    with pytest.raises(FtopsError, match="is outside the git repository"):
        gitinfo.repo_path(root, tmp_path / "elsewhere.jsonl")


def test_dirty_files_among_given_paths(repo: git.Repo) -> None:
    root = root_of(repo)
    assert gitinfo.dirty_files(root, ["specs", "data"]) == ()
    (root / "specs" / "models.yaml").write_text("models: {a: {}}\n")  # modified
    (root / "specs" / "team").mkdir()
    (root / "specs" / "team" / "new.yaml").write_text("datasets: {}\n")  # untracked, nested
    (root / "data" / "val.jsonl").write_text("{}\n")
    repo.git.add("data/val.jsonl")  # staged
    (root / "README.md").write_text("changed\n")  # dirty but not asked about
    assert gitinfo.dirty_files(root, ["specs", "data"]) == (
        "data/val.jsonl",
        "specs/models.yaml",
        "specs/team/new.yaml",
    )
    assert gitinfo.dirty_files(root, ["data/train.jsonl"]) == ()
    assert gitinfo.dirty_files(root, []) == ()


def test_dirty_files_reports_both_sides_of_a_rename(repo: git.Repo) -> None:
    root = root_of(repo)
    repo.git.mv("data/train.jsonl", "data/renamed.jsonl")
    assert gitinfo.dirty_files(root, ["data"]) == ("data/renamed.jsonl", "data/train.jsonl")


def test_changed_files_between_commits(repo: git.Repo) -> None:
    root = root_of(repo)
    base = repo.head.commit.hexsha
    (root / "data" / "train.jsonl").write_text('{"a": 2}\n')
    (root / "data" / "val.jsonl").write_text("{}\n")
    (root / "README.md").unlink()
    head = commit_all(repo, "change")
    expected = ("README.md", "data/train.jsonl", "data/val.jsonl")
    assert gitinfo.changed_files(root, base, head) == expected
    assert gitinfo.changed_files(root, base) == expected
    assert gitinfo.changed_files(root, head, head) == ()
    with pytest.raises(FtopsError) as err:
        gitinfo.changed_files(root, "1" * 40, head)
    assert "fetch-depth: 0" in str(err.value)


def test_file_at_a_commit(repo: git.Repo) -> None:
    root = root_of(repo)
    base = repo.head.commit.hexsha
    (root / "data" / "train.jsonl").write_text('{"a": 2}\n')
    head = commit_all(repo, "change")
    assert gitinfo.file_at(root, "data/train.jsonl", base) == b'{"a": 1}\n'
    assert gitinfo.file_at(root, "data/train.jsonl", head) == b'{"a": 2}\n'
    assert gitinfo.file_at(root, "data/missing.jsonl", head) is None
    with pytest.raises(FtopsError, match="is a directory"):
        gitinfo.file_at(root, "data", head)
    with pytest.raises(FtopsError, match=r"commit 0{40} is not in"):
        gitinfo.file_at(root, "data/train.jsonl", "0" * 40)


def test_commit_file_commits_only_the_lock(repo: git.Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIT_AUTHOR_NAME", raising=False)
    monkeypatch.delenv("GIT_AUTHOR_EMAIL", raising=False)
    root = root_of(repo)
    before = repo.head.commit.hexsha
    (root / "ftops.lock").write_text("version: 1\nmodels: {}\n")
    (root / "README.md").write_text("staged, not ours\n")
    repo.git.add("README.md")
    message = gitinfo.lock_commit_message(2)
    sha = gitinfo.commit_file(root, "ftops.lock", message)
    commit = repo.commit(sha)
    assert commit.message == "ftops: update ftops.lock (2 models)\n"
    assert commit.parents[0].hexsha == before
    assert list(commit.stats.files) == ["ftops.lock"]
    assert (commit.author.name, commit.author.email) == (BOT_AUTHOR.name, BOT_AUTHOR.email)
    assert (commit.committer.name, commit.committer.email) == (BOT_AUTHOR.name, BOT_AUTHOR.email)
    assert repo.git.diff("--cached", "--name-only") == "README.md"  # still staged


def test_commit_file_is_a_no_op_when_unchanged(repo: git.Repo) -> None:
    root = root_of(repo)
    (root / "ftops.lock").write_text("version: 1\n")
    first = gitinfo.commit_file(root, "ftops.lock", "lock", Author("A", "a@example.com"))
    assert first == repo.head.commit.hexsha
    assert gitinfo.commit_file(root, "ftops.lock", "lock again") is None
    assert repo.head.commit.hexsha == first
    (root / "ftops.lock").write_text("version: 1\nmodels: {x: 1}\n")
    second = gitinfo.commit_file(root, root / "ftops.lock", "lock", "Bea Lock <bea@example.com>")
    assert second is not None and repo.commit(second).parents[0].hexsha == first
    assert repo.commit(second).author.email == "bea@example.com"


def test_author_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gitinfo.default_author({}) == BOT_AUTHOR
    assert gitinfo.default_author({"GIT_AUTHOR_NAME": "Only Name"}) == BOT_AUTHOR
    env = {"GIT_AUTHOR_NAME": "Ci User", "GIT_AUTHOR_EMAIL": "ci@example.com"}
    assert gitinfo.default_author(env) == Author("Ci User", "ci@example.com")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Env User")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "env@example.com")
    assert gitinfo.default_author() == Author("Env User", "env@example.com")
    assert str(BOT_AUTHOR) == (
        "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"
    )


def test_commit_file_uses_environment_author(
    repo: git.Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Env User")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "env@example.com")
    root = root_of(repo)
    (root / "ftops.lock").write_text("x\n")
    sha = gitinfo.commit_file(root, "ftops.lock", gitinfo.lock_commit_message(1))
    commit = repo.commit(sha)
    assert commit.message == "ftops: update ftops.lock (1 model)\n"
    assert (commit.author.name, commit.author.email) == ("Env User", "env@example.com")


def test_commit_file_refuses_an_ignored_lock(repo: git.Repo) -> None:
    root = root_of(repo)
    (root / ".gitignore").write_text("ftops.lock\n")
    (root / "ftops.lock").write_text("x\n")
    with pytest.raises(FtopsError, match=r"ftops\.lock is ignored by git"):
        gitinfo.commit_file(root, "ftops.lock", "lock")


def test_invalid_author() -> None:
    with pytest.raises(FtopsError, match="invalid git author"):
        Author.parse("no email here")


def test_head_commit_or_none(repo: git.Repo, tmp_path: Path) -> None:
    assert gitinfo.head_commit_or_none(root_of(repo) / "specs") == repo.head.commit.hexsha
    assert gitinfo.head_commit_or_none(tmp_path) is None
    empty = git.Repo.init(tmp_path / "empty")
    assert gitinfo.head_commit_or_none(Path(empty.working_tree_dir or "")) is None


@pytest.mark.parametrize(
    ("url", "identity"),
    [
        ("https://github.com/acme/models.git", "github.com/acme/models"),
        ("https://x-access-token:ghs_SECRET@GitHub.com/acme/models/", "github.com/acme/models"),
        ("git@github.com:acme/models.git", "github.com/acme/models"),
        ("ssh://git@github.com:22/acme/models.git", "github.com/acme/models"),
        ("/srv/git/models.git", "srv/git/models"),
    ],
)
def test_origin_identity(repo: git.Repo, url: str, identity: str) -> None:
    repo.create_remote("origin", url)
    assert gitinfo.origin_identity(root_of(repo)) == identity


def test_origin_identity_without_origin(repo: git.Repo, tmp_path: Path) -> None:
    repo.create_remote("upstream", "https://github.com/other/models")
    assert gitinfo.origin_identity(root_of(repo)) is None
    assert gitinfo.origin_identity(tmp_path) is None
