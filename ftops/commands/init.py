"""``ftops init [DIR]``: a starting point in a new or existing git repository: example specs and
a dataset, the JSON Schema their first line points editors at, the three example workflows, a
pre-commit hook and ``.ftops/`` in ``.gitignore``. It never overwrites a file unless forced, so
running it again, or in a repository that already has some of these, is safe.

The templates ship in the package (``ftops/data/init/``): the specs are their own; the workflows
and the hook list are the repository's ``examples/workflows/`` and ``.pre-commit-hooks.yaml``
(symbolic links there, files in a wheel), so what ``init`` writes is what the repository tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import git
import yaml

from ftops import __version__
from ftops.errors import UsageError
from ftops.spec import SCHEMA_PATH, schema_text

TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "init"
PLACEHOLDER_ACTION = "OWNER/ftops@v0"  # as the example workflows spell it
PLACEHOLDER_REPO = "https://github.com/OWNER/ftops"
MODELINE = "# yaml-language-server: $schema="
# The examples point editors at the copy in the ftops repository; a user's repository has none.
WORKFLOW_SCHEMA = "https://json.schemastore.org/github-workflow.json"
IGNORED = ".ftops/"
_IGNORE_LINES = {".ftops", ".ftops/", "/.ftops", "/.ftops/", ".ftops/*", "/.ftops/*"}
_GITHUB = re.compile(
    r"(?:git\+)?(?:https://(?:[^@/]+@)?|ssh://git@|git@)github\.com[/:]"
    r"([A-Za-z0-9-]+/[\w.-]+?)(?:\.git)?/?"
)
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class ActionSource:
    """ftops on GitHub at one commit: what the workflows' ``uses:`` and pre-commit's ``rev:``
    pin, so a moved tag cannot change the code that runs with the repository's secrets."""

    repo: str  # owner/name
    commit: str  # the full commit SHA
    label: str  # what that commit is (a tag, or how it was found), for the version comment

    @property
    def uses(self) -> str:
        return f"{self.repo}@{self.commit} # {self.label}"


@dataclass(frozen=True)
class InitOptions:
    directory: Path = Path(".")
    force: bool = False  # overwrite files that exist (.gitignore is only ever appended to)
    # Where the workflows point; None: found from how this ftops was installed, if it can be.
    action: ActionSource | None = None


@dataclass
class InitRun:
    directory: Path  # as given
    root: Path  # the git work tree that holds it
    created_repo: bool
    action: ActionSource | None
    precommit: str  # the pre-commit snippet, shown when .pre-commit-config.yaml was kept
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    gitignore: str = ""

    def to_text(self) -> str:
        lines = [self._repository_line()]
        lines += [f"wrote {path}" for path in self.written]
        lines += [f"skipped {path}: it exists (--force overwrites it)" for path in self.skipped]
        lines.append(self.gitignore)
        lines.append(f"{SCHEMA_PATH} is the JSON Schema the specs' first line points editors at "
                     f"(`ftops schema > {SCHEMA_PATH}` refreshes it after an upgrade).")
        lines.append(self._action_line())
        lines.append("The workflows read OPENAI_API_KEY from the GitHub environments ftops-plan "
                     "and ftops-apply; their comments say how to set them up.")
        if ".pre-commit-config.yaml" in self.skipped:
            lines.append("Add ftops to your .pre-commit-config.yaml:")
            lines += ["  " + line for line in self.precommit.splitlines() if line]
        here = str(self.directory) in ("", ".")
        lines.append("\nNext:" if here else f"\nNext, in {self.directory}:")
        lines += ["  " + command for command in NEXT_COMMANDS]
        return "\n".join(lines) + "\n"

    def _repository_line(self) -> str:
        if self.created_repo:
            return (f"{self.directory} was not a git repository: initialised one (branch main, "
                    "which the apply workflow deploys from).")
        line = f"Using the git repository at {self.root}."
        if self.root != self.directory.resolve():
            line += (" GitHub runs workflows only from its root's .github/workflows/: move them "
                     "there and set working-directory on their ftops steps.")
        return line

    def _action_line(self) -> str:
        if self.action is not None:
            return (f"The workflows and the pre-commit hook are pinned to {self.action.repo}@"
                    f"{self.action.commit} ({self.action.label}), where this ftops came from.")
        return (f"Placeholders: `uses: {PLACEHOLDER_ACTION}` in .github/workflows/ftops-*.yml "
                f"and {PLACEHOLDER_REPO} in .pre-commit-config.yaml name the repository that "
                "hosts ftops: replace them, pinned to a release's full commit SHA (this ftops "
                "was not installed from a commit on GitHub, so init cannot tell).")


NEXT_COMMANDS = (
    "ftops validate",
    "ftops plan --emulator",
    'git add -A && git commit -m "Add ftops specs, workflows and pre-commit hook"',
)


def run(options: InitOptions) -> InitRun:
    target = options.directory
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is a file, not a directory")
    root, created = _repository(target)
    action = options.action or installed_source()
    precommit = precommit_text(action)
    result = InitRun(target, root, created, action, precommit)
    for relative, content in _files(action, precommit).items():
        path = target / relative
        if (path.exists() or path.is_symlink()) and not options.force:
            result.skipped.append(relative)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        result.written.append(relative)
    result.gitignore = _ignore_state(target / ".gitignore")
    return result


def _repository(target: Path) -> tuple[Path, bool]:
    """The work tree holding ``target`` (created, and a repository made there, if need be), and
    whether init made it: specs must live in git, since git is the source of truth."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        with git.Repo(target, search_parent_directories=True) as repo:
            if repo.working_tree_dir is not None:
                return Path(repo.working_tree_dir).resolve(), False
    except git.InvalidGitRepositoryError:
        pass
    # main, because the apply workflow deploys from main whatever git's own default is.
    git.Repo.init(target, initial_branch="main").close()
    return target.resolve(), True


def _files(action: ActionSource | None, precommit: str) -> dict[str, bytes]:
    """Every file init writes, by its path relative to the directory, in the order shown."""
    specs = TEMPLATES / "specs"
    files = {f"specs/{p.relative_to(specs).as_posix()}": p.read_bytes()
             for p in sorted(specs.rglob("*")) if p.is_file()}
    files[SCHEMA_PATH] = schema_text().encode()
    for path in sorted((TEMPLATES / "workflows").glob("*.yml")):
        text = workflow_text(path.read_text(encoding="utf-8"), action)
        files[f".github/workflows/{path.name}"] = text.encode()
    files[".pre-commit-config.yaml"] = precommit.encode()
    return files


def workflow_text(template: str, action: ActionSource | None) -> str:
    """An example workflow as a user's repository needs it: its schema modeline pointing at
    SchemaStore, and, when ``action`` is known, the placeholder ``uses:`` (with its comment and
    its zizmor exception) replaced by the pinned reference."""
    lines = template.splitlines(keepends=True)
    if lines and lines[0].startswith(MODELINE):
        lines[0] = f"{MODELINE}{WORKFLOW_SCHEMA}\n"
    lines.insert(1, f"# Written by `ftops init` (ftops {__version__}) from its example workflows."
                    "\n")
    if action is None:
        return "".join(lines)
    out = []
    for line in lines:
        if line.lstrip().startswith("# Placeholder:"):
            continue
        if line.lstrip().startswith(f"uses: {PLACEHOLDER_ACTION}"):
            line = f"{line[: line.index('uses:')]}uses: {action.uses}\n"
        out.append(line)
    return "".join(out)


def precommit_text(action: ActionSource | None) -> str:
    """A ``.pre-commit-config.yaml`` running this repository's hooks (.pre-commit-hooks.yaml)."""
    hooks = yaml.safe_load((TEMPLATES / "pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    if action is not None:
        repo = f"https://github.com/{action.repo}"
        rev = f"{action.commit}  # frozen: {action.label}"
    else:
        repo = f"{PLACEHOLDER_REPO}  # placeholder: the repository that hosts ftops"
        rev = f"v{__version__}  # placeholder: better, that release's full commit SHA"
    lines = ["# ftops validate on each commit that touches specs or datasets (offline, no key).",
             "repos:", f"  - repo: {repo}", f"    rev: {rev}", "    hooks:"]
    lines += [f"      - id: {hook['id']}" for hook in hooks]
    return "\n".join(lines) + "\n"


def _ignore_state(path: Path) -> str:
    """Adds ``.ftops/`` (the emulator's state, logs and caches) to ``.gitignore`` unless it is
    there already; never rewrites what the file had."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if any(line.strip() in _IGNORE_LINES for line in text.splitlines()):
        return f".gitignore already ignores {IGNORED}"
    separator = "" if not text or text.endswith("\n") else "\n"
    entry = f"# ftops: the emulator's state, logs and caches\n{IGNORED}\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(separator + entry)
    return f"appended {IGNORED} to .gitignore" if text else f"wrote .gitignore ({IGNORED})"


def installed_source() -> ActionSource | None:
    """Where this ftops was installed from, if that is a commit on GitHub: pip records it in
    the distribution's direct_url.json (PEP 610), for a git URL or a local checkout."""
    try:
        raw = metadata.distribution("ftops").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return source_from_direct_url(info) if isinstance(info, dict) else None


def source_from_direct_url(info: dict[str, Any]) -> ActionSource | None:
    url = str(info.get("url", ""))
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict):
        found = _GITHUB.fullmatch(url)
        commit = str(vcs.get("commit_id", ""))
        if found is None or not _SHA.fullmatch(commit):
            return None
        label = str(vcs.get("requested_revision") or f"ftops {__version__}")
        return ActionSource(found.group(1), commit, label)
    if url.startswith("file://"):
        return source_from_checkout(Path(unquote(urlsplit(url).path)))
    return None


def source_from_checkout(path: Path) -> ActionSource | None:
    """A checkout's HEAD, if a GitHub remote has it (a remote-tracking branch contains it): an
    unpushed commit would pin the workflows to something GitHub cannot fetch."""
    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    with repo:
        try:
            head = repo.head.commit.hexsha
        except ValueError:  # no commit yet
            return None
        for remote in repo.remotes:
            found = _GITHUB.fullmatch(remote.url)
            branches = repo.git.branch("-r", "--contains", head, "--list", f"{remote.name}/*")
            if found and branches.strip():
                return ActionSource(found.group(1), head, _describe(repo, head))
    return None


def _describe(repo: Any, head: str) -> str:
    """The tag HEAD is, for the version comment, or a plain description when it is none."""
    try:
        return str(repo.git.describe("--tags", "--exact-match", head))
    except git.GitCommandError:
        return f"ftops {__version__}, untagged commit"
