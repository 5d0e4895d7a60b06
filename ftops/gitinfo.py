"""Facts from git (gitpython): repo root, HEAD, dirty and changed files, the lock commit."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ftops.errors import FtopsError

if TYPE_CHECKING:
    import git

# gitpython is imported inside each function: `ftops validate` (a pre-commit hook) and
# `ftops --help` must not pay its import time.

_FETCH_HINT = "fetch the full history, e.g. actions/checkout with `fetch-depth: 0`"


@dataclass(frozen=True)
class Author:
    """A git identity, used as both author and committer of ftops' own commits."""

    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @classmethod
    def parse(cls, text: str) -> Author:
        """``Name <email>``, the form git's ``--author`` takes."""
        match = re.fullmatch(r"\s*([^<>]+?)\s*<([^<>\s]+)>\s*", text)
        if match is None:
            raise FtopsError(f"invalid git author {text!r}", hint="use the form 'Name <email>'")
        return cls(match.group(1), match.group(2))


BOT_AUTHOR = Author("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")


def default_author(env: Mapping[str, str] | None = None) -> Author:
    """GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL when both are set, else the GitHub Actions bot."""
    env = os.environ if env is None else env
    name, email = env.get("GIT_AUTHOR_NAME", ""), env.get("GIT_AUTHOR_EMAIL", "")
    return Author(name, email) if name and email else BOT_AUTHOR


def repo_root(path: str | Path = ".") -> Path:
    """The top directory of the work tree that contains ``path``: the nearest directory that
    holds a ``.git`` entry (a directory, or a file in worktrees and submodules), found the way
    git does, without importing gitpython (validate runs in pre-commit hooks)."""
    start = Path(path).resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    raise FtopsError(f"{path} is not inside a git repository", hint="run ftops from a git checkout")


def repo_path(root: Path, path: str | Path) -> str:
    """``path`` (absolute, or relative to the current directory) as a POSIX path inside ``root``."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise FtopsError(f"{path} is outside the git repository {root}") from None


def head_commit(root: Path) -> str:
    """The full sha of HEAD."""
    with _open(root) as repo:
        try:
            return repo.head.commit.hexsha
        except ValueError:
            raise FtopsError(f"{root}: the repository has no commit yet") from None


def head_commit_or_none(path: Path) -> str | None:
    """The sha of HEAD, or None outside a repository or before the first commit (job metadata
    records it for provenance; a missing one must not stop a plan)."""
    try:
        return head_commit(repo_root(path))
    except FtopsError:
        return None


def origin_identity(root: Path) -> str | None:
    """``host/owner/name`` of the ``origin`` remote, the same for its HTTPS and SSH URLs and
    without credentials; None when there is no repository or no origin."""
    import git
    try:
        with git.Repo(root, search_parent_directories=True) as repo:
            url = next((r.url for r in repo.remotes if r.name == "origin"), None)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    if not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        host, path = (parts.hostname or "").lower(), parts.path
    elif match := re.fullmatch(r"(?:[^@/]+@)?([^:/]+):(.+)", url):  # scp-like: git@host:path
        host, path = match.group(1).lower(), match.group(2)
    else:  # a local path
        host, path = "", url
    path = path.strip("/").removesuffix(".git")
    return f"{host}/{path}" if host else path


def dirty_files(root: Path, paths: Iterable[str | Path]) -> tuple[str, ...]:
    """Files under ``paths`` that differ from HEAD: modified, staged, deleted, untracked, or
    ignored by a .gitignore (never committed either way)."""
    return tuple(sorted(file_states(root, paths)))


def file_states(root: Path, paths: Iterable[str | Path]) -> dict[str, str]:
    """Each file under ``paths`` that is not as committed at HEAD, and how: ``untracked``,
    ``ignored`` (untracked, and matched by a .gitignore) or ``modified`` (changed, staged,
    deleted or renamed). A tracked file is never ignored, whatever .gitignore says."""
    specs = [repo_path(root, root / p) for p in paths]
    if not specs:
        return {}
    with _open(root) as repo:
        # "traditional" with -uall names each ignored file, not just its ignored directory.
        out = _git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all",
                   "--ignored=traditional", "--", *specs)
    found: dict[str, str] = {}
    entries = iter(out.split("\0"))
    for entry in entries:
        if not entry:
            continue
        code = entry[:2]
        found[entry[3:]] = {"??": "untracked", "!!": "ignored"}.get(code, "modified")
        if entry[0] in "RC":  # a rename or copy is followed by its source path
            found[next(entries)] = "modified"
    return found


def changed_files(root: Path, base: str, head: str = "HEAD") -> tuple[str, ...]:
    """Paths added, modified or deleted between two commits (a rename counts as both paths)."""
    with _open(root) as repo:
        out = _git(repo, "diff", "--name-only", "--no-renames", "-z", base, head, "--")
    return tuple(sorted(p for p in out.split("\0") if p))


def file_at(root: Path, path: str | Path, commit: str) -> bytes | None:
    """The bytes of ``path`` (relative to ``root``) at ``commit``; None when it did not exist."""
    from gitdb.exc import BadName
    rel = Path(path).as_posix()
    with _open(root) as repo:
        try:
            tree = repo.commit(commit).tree
        except (BadName, ValueError):
            raise FtopsError(f"commit {commit} is not in {root}", hint=_FETCH_HINT) from None
        try:
            blob = tree / rel
        except KeyError:
            return None
        if blob.type != "blob":
            raise FtopsError(f"{rel} is a directory at commit {commit[:12]}, not a file")
        data: bytes = blob.data_stream.read()
        return data


def lock_commit_message(models: int) -> str:
    return f"ftops: update ftops.lock ({models} model{'' if models == 1 else 's'})"


def commit_file(
    root: Path, path: str | Path, message: str, author: Author | str | None = None
) -> str | None:
    """Commit only ``path`` (other staged changes stay staged); the new sha, or None if unchanged.

    The author defaults to :func:`default_author`; it is the committer too, so CI runners need
    no git identity configured.
    """
    who = default_author() if author is None else author
    who = Author.parse(who) if isinstance(who, str) else who
    rel = repo_path(root, root / path)
    with _open(root) as repo:
        status = _git(repo, "status", "--porcelain=v1", "--ignored=matching", "--", rel)
        if not status:
            return None
        if status.startswith("!!"):
            raise FtopsError(f"{rel} is ignored by git", hint=f"remove {rel} from .gitignore")
        env = {"GIT_COMMITTER_NAME": who.name, "GIT_COMMITTER_EMAIL": who.email}
        _git(repo, "add", "--", rel)
        _git(repo, "commit", "--only", "-m", message, f"--author={who}", "--", rel, env=env)
        return repo.head.commit.hexsha


def _open(root: Path) -> git.Repo:
    import git
    try:
        return git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise FtopsError(f"{root} is not a git repository") from None


def _git(repo: git.Repo, *args: str, env: Mapping[str, str] | None = None) -> str:
    import git
    try:
        return repo.git.execute(["git", *args], env=env, strip_newline_in_stdout=False)
    except git.GitCommandError as exc:
        detail = (exc.stderr or "").strip().removeprefix("stderr:").strip(" '\n")
        hint = _FETCH_HINT if "unknown revision" in detail or "bad object" in detail else None
        raise FtopsError(f"git {args[0]} failed: {detail or exc.status}", hint=hint) from None
