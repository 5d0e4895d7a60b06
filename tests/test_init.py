"""``ftops init``: what it writes in a new directory, an existing repository and a subdirectory;
that it never overwrites without --force; that validate and plan --emulator pass right after it;
and how it finds where ftops came from, to pin the workflows' ``uses:``."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest
import yaml
from click.testing import CliRunner, Result

from ftops.cli import main
from ftops.commands import init
from ftops.commands.init import ActionSource, InitOptions, source_from_direct_url
from ftops.spec import SCHEMA_PATH, schema_text
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
SHA = "0123456789abcdef0123456789abcdef01234567"  # any 40 hex digits: nothing resolves it here
WORKFLOWS = ("ftops-apply.yml", "ftops-drift.yml", "ftops-plan.yml")
WRITTEN = (
    "specs/data/example-train.jsonl",
    "specs/datasets.yaml",
    "specs/models.yaml",
    SCHEMA_PATH,
    *(f".github/workflows/{name}" for name in WORKFLOWS),
    ".pre-commit-config.yaml",
)


def ftops_init(*args: str) -> Result:
    result = CliRunner().invoke(main, ["init", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_init_in_a_new_directory_then_validate_and_plan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "new" / "project"
    result = ftops_init(str(target))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "was not a git repository: initialised one (branch main" in lines[0]
    assert git.Repo(target).active_branch.name == "main"
    assert [line.removeprefix("wrote ") for line in lines[1:1 + len(WRITTEN)]] == list(WRITTEN)
    assert lines[-4:] == [f"Next, in {target}:", "  ftops validate", "  ftops plan --emulator",
                          '  git add -A && git commit -m "Add ftops specs, workflows and '
                          'pre-commit hook"']

    examples = (target / "specs/data/example-train.jsonl").read_text().splitlines()
    assert len(examples) >= 10
    for line in examples:
        roles = [m["role"] for m in json.loads(line)["messages"]]
        assert roles[-1] == "assistant" and "user" in roles
    for spec_file in ("specs/datasets.yaml", "specs/models.yaml"):
        first = (target / spec_file).read_text().splitlines()[0]
        schema = first.removeprefix("# yaml-language-server: $schema=")
        assert ((target / spec_file).parent / schema).resolve() == target / SCHEMA_PATH
    assert (target / SCHEMA_PATH).read_text() == schema_text()
    assert (target / ".gitignore").read_text().splitlines()[-1] == ".ftops/"

    # The workflows are the repository's examples, pointing editors at SchemaStore, with the
    # marked placeholder the output names (this ftops is an editable checkout without a remote).
    for name in WORKFLOWS:
        text = (target / ".github/workflows" / name).read_text()
        example = (ROOT / "examples/workflows" / name).read_text()
        assert text.splitlines()[0] == ("# yaml-language-server: "
                                        "$schema=https://json.schemastore.org/github-workflow.json")
        assert text.splitlines()[2:] == example.splitlines()[1:]
    assert "Placeholders: `uses: OWNER/ftops@v0`" in result.output
    precommit = yaml.safe_load((target / ".pre-commit-config.yaml").read_text())
    [entry] = precommit["repos"]
    assert entry["repo"] == "https://github.com/OWNER/ftops"
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in entry["hooks"]] == [h["id"] for h in hooks]

    monkeypatch.chdir(target)
    validated = run_cli(Path("specs"), "validate")
    assert validated.exit_code == 0, validated.output
    assert "Valid: 1 dataset, 1 model, no errors." in validated.output
    planned = run_cli(Path("specs"), "plan", "--emulator")
    assert planned.exit_code == 0, planned.output
    assert "+ upload   dataset.example-train" in planned.output
    assert "+ train    model.example-bot" in planned.output


def test_init_in_an_existing_repository_keeps_every_file(tmp_path: Path) -> None:
    git.Repo.init(tmp_path).close()
    (tmp_path / ".gitignore").write_text("node_modules/")  # no final newline
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs/models.yaml").write_text("models: {}\n")
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")

    result = ftops_init(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"Using the git repository at {tmp_path.resolve()}." in result.output
    assert "skipped specs/models.yaml: it exists (--force overwrites it)" in result.output
    assert "skipped .pre-commit-config.yaml: it exists" in result.output
    assert "Add ftops to your .pre-commit-config.yaml:" in result.output
    assert "      - id: ftops-validate" in result.output  # the snippet, indented
    assert "wrote specs/datasets.yaml" in result.output
    assert (tmp_path / "specs/models.yaml").read_text() == "models: {}\n"
    assert (tmp_path / ".pre-commit-config.yaml").read_text() == "repos: []\n"
    expected = "node_modules/\n# ftops: the emulator's state, logs and caches\n.ftops/\n"
    assert (tmp_path / ".gitignore").read_text() == expected
    assert "appended .ftops/ to .gitignore" in result.output

    again = ftops_init(str(tmp_path))
    assert again.exit_code == 0
    assert "wrote" not in again.output
    assert ".gitignore already ignores .ftops/" in again.output
    assert (tmp_path / ".gitignore").read_text() == expected

    forced = ftops_init(str(tmp_path), "--force")
    assert forced.exit_code == 0
    assert "skipped" not in forced.output
    assert "example-bot" in (tmp_path / "specs/models.yaml").read_text()
    assert (tmp_path / ".gitignore").read_text() == expected


def test_init_in_a_subdirectory_says_where_workflows_belong(tmp_path: Path) -> None:
    git.Repo.init(tmp_path).close()
    result = ftops_init(str(tmp_path / "ml"))
    assert result.exit_code == 0
    assert f"Using the git repository at {tmp_path.resolve()}." in result.output
    assert "move them there and set working-directory" in result.output
    assert not (tmp_path / "ml" / ".git").exists()


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    result = ftops_init(str(tmp_path / "taken"))
    assert result.exit_code == 1
    assert "is a file" in result.output or "is a file" in (result.stderr or "")


def test_init_pins_the_workflows_when_it_knows_the_commit(tmp_path: Path) -> None:
    source = ActionSource("acme/ftops", SHA, "v0.1.0")
    run = init.run(InitOptions(directory=tmp_path, action=source))
    assert "pinned to acme/ftops@" + SHA + " (v0.1.0)" in run.to_text()
    for name in WORKFLOWS:
        text = (tmp_path / ".github/workflows" / name).read_text()
        assert f"uses: acme/ftops@{SHA} # v0.1.0\n" in text
        assert "OWNER/ftops@v0 #" not in text and "zizmor: ignore" not in text
        assert "# Placeholder" not in text
        assert yaml.safe_load(text)["jobs"]  # still a workflow
    [entry] = yaml.safe_load((tmp_path / ".pre-commit-config.yaml").read_text())["repos"]
    assert entry["repo"] == "https://github.com/acme/ftops" and entry["rev"] == SHA
    assert f"rev: {SHA}  # frozen: v0.1.0" in (tmp_path / ".pre-commit-config.yaml").read_text()


# --- where ftops came from (PEP 610 direct_url.json) -----------------------------------------


@pytest.mark.parametrize("url", ["https://github.com/acme/ftops.git", "https://github.com/acme/ftops",
                                 "git@github.com:acme/ftops.git", "ssh://git@github.com/acme/ftops"])
def test_a_git_install_from_github_is_pinned(url: str) -> None:
    info = {"url": url, "vcs_info": {"vcs": "git", "commit_id": SHA, "requested_revision": "v1.2"}}
    assert source_from_direct_url(info) == ActionSource("acme/ftops", SHA, "v1.2")
    info["vcs_info"].pop("requested_revision")  # type: ignore[attr-defined]
    assert source_from_direct_url(info) == ActionSource("acme/ftops", SHA, "ftops 0.1.0")


@pytest.mark.parametrize("info", [
    {"url": "https://gitlab.com/acme/ftops.git", "vcs_info": {"vcs": "git", "commit_id": SHA}},
    {"url": "https://github.com/acme/ftops.git", "vcs_info": {"vcs": "git", "commit_id": "v1"}},
    {"url": "https://files.example/ftops-0.1.0.tar.gz", "archive_info": {}},
    {"url": "file:///nonexistent/ftops", "dir_info": {"editable": True}},
])
def test_other_installs_leave_the_placeholder(info: dict[str, object]) -> None:
    assert source_from_direct_url(info) is None


def test_a_checkout_is_pinned_only_once_github_has_its_commit(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    (tmp_path / "README.md").write_text("ftops\n")
    repo.index.add(["README.md"])
    head = repo.index.commit("ftops", author=git.Actor("T", "t@example.com"),
                             committer=git.Actor("T", "t@example.com")).hexsha
    repo.create_remote("origin", "https://github.com/acme/ftops.git")
    info = {"url": tmp_path.as_uri(), "dir_info": {"editable": True}}
    assert source_from_direct_url(info) is None  # not pushed: GitHub could not fetch it
    repo.git.update_ref("refs/remotes/origin/main", head)  # as a fetch or a push leaves it
    assert source_from_direct_url(info) == ActionSource(
        "acme/ftops", head, "ftops 0.1.0, untagged commit")
    repo.create_tag("v0.1.0")
    assert source_from_direct_url(info) == ActionSource("acme/ftops", head, "v0.1.0")
    repo.close()
