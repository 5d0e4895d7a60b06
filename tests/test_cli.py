"""The CLI's one error handler: exit codes that mean one thing each (ftops.errors.ExitCode)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import git
import pytest
import yaml
from click.testing import CliRunner, Result

from ftops import __version__
from ftops.cli import main
from tests.conftest import make_chat_jsonl, run_cli


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


# --- helpers ---------------------------------------------------------------------------------


def ftops(*args: str, group: click.Group = main, stdin: str | None = None) -> Result:
    return CliRunner().invoke(group, list(args), input=stdin, prog_name="ftops")


def crashing_group(error: BaseException) -> click.Group:
    """A copy of ``main`` with one more command, ``boom``, that raises ``error``: the handler
    is the group's, so this exercises it without touching any ftops internals."""
    group = copy.copy(main)
    group.commands = dict(main.commands)  # the copy must not add `boom` to the real CLI

    @group.command("boom")
    def boom() -> None:
        raise error

    return group


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one model and its dataset committed; returns its spec dir."""
    specs = tmp_path / "repo" / "specs"
    (specs / "data").mkdir(parents=True)
    (specs / "data" / "train.jsonl").write_bytes(make_chat_jsonl(12))
    (specs / "datasets.yaml").write_text(yaml.safe_dump({
        "datasets": {"train": {"path": "data/train.jsonl"}},
        "base_models": {"mini": "gpt-4o-mini-2024-07-18"}}))
    (specs / "models.yaml").write_text(yaml.safe_dump({"models": {"bot": {
        "base": "mini", "training": "train", "hyperparameters": {"n_epochs": 3}, "seed": 1}}}))
    with git.Repo.init(specs.parent) as handle:
        with handle.config_writer() as config:
            config.set_value("user", "name", "t")
            config.set_value("user", "email", "t@example.invalid")
        handle.git.add(A=True)
        handle.index.commit("specs")
    return specs


# --- exit 0: help and version ----------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["plan", "--help"],
                                  ["apply", "--help"]])
def test_help_and_version_exit_0(args: list[str]) -> None:
    result = ftops(*args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# --- exit 1: usage errors (click would exit 2, which means "changes pending") ---------------


def test_unknown_flag_exits_1_with_clicks_usage_message() -> None:
    result = ftops("plan", "--bogus")
    assert result.exit_code == 1
    assert "Usage: ftops plan" in result.stderr
    assert "Error: No such option '--bogus'" in result.stderr
    assert result.stdout == ""


def test_unknown_command_exits_1() -> None:
    result = ftops("nosuch")
    assert result.exit_code == 1
    assert "Error: No such command 'nosuch'" in result.stderr


def test_bad_choice_value_exits_1() -> None:
    result = ftops("emulator", "--flavor", "nope")
    assert result.exit_code == 1
    assert "Error: Invalid value for '--flavor'" in result.stderr


def test_out_of_range_value_exits_1() -> None:
    assert ftops("emulator", "--fault-rate", "2").exit_code == 1


def test_missing_plan_file_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = ftops("apply", "missing-plan.json")
    assert result.exit_code == 1
    assert "File 'missing-plan.json' does not exist" in result.stderr


def test_missing_required_argument_exits_1() -> None:
    result = ftops("import")
    assert result.exit_code == 1
    assert "Missing argument" in result.stderr


# --- exit 1: a path the user gave that cannot be used -----------------------------------------


def test_plan_out_in_missing_directory_is_one_line_exit_1(repo: Path) -> None:
    result = run_cli(repo, "plan", "--out", "/nonexistent/dir/p.json", "--emulator")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: /nonexistent/dir/p.json: {os.strerror(2)}"  # ENOENT
    ]
    assert "Traceback" not in result.output


def test_oserror_with_a_filename_anywhere_is_one_line_exit_1() -> None:
    result = ftops("boom", group=crashing_group(PermissionError(13, os.strerror(13), "/x/y")))
    assert result.exit_code == 1
    assert result.stderr == f"Error: /x/y: {os.strerror(13)}\n"


# --- exit 2: only plan --detailed-exitcode, changes pending ---------------------------------


def test_detailed_exitcode_still_exits_2_when_changes_are_pending(repo: Path) -> None:
    result = run_cli(repo, "plan", "--emulator", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert result.stderr == ""


# --- exit 3: a bug; one line, the traceback in a log file -----------------------------------


def test_unexpected_exception_exits_3_with_traceback_in_a_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "plain-secret-value-1234")
    error = RuntimeError("went\nwrong with plain-secret-value-1234 and sk-abcdef123456")
    result = ftops("boom", group=crashing_group(error))
    assert result.exit_code == 3
    logs = list((tmp_path / ".ftops" / "logs").glob("ftops-*.log"))
    assert len(logs) == 1
    assert result.stderr == (
        f"Error: unexpected RuntimeError: went wrong with *** and sk-*** "
        f"(traceback in {logs[0].resolve()})\n")
    assert result.stdout == ""
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "raise error" in text
    assert "plain-secret-value-1234" not in text and "sk-abcdef123456" not in text


def test_log_falls_back_to_the_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".ftops").write_text("a file, so .ftops/logs cannot be made")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    result = ftops("boom", group=crashing_group(KeyError("k")))
    assert result.exit_code == 3
    [log] = (tmp_path / "tmp").glob("ftops-*.log")
    assert result.stderr == f"Error: unexpected KeyError: 'k' (traceback in {log.resolve()})\n"
    assert "KeyError" in log.read_text()


# --- exit 130: interrupted --------------------------------------------------------------------


def test_ctrl_c_exits_130() -> None:
    result = ftops("boom", group=crashing_group(KeyboardInterrupt()))
    assert result.exit_code == 130
    assert result.stderr.strip() == "Interrupted."
    assert "Traceback" not in result.output


def test_abort_at_a_prompt_exits_130() -> None:
    group = copy.copy(main)
    group.commands = dict(main.commands)

    @group.command("ask")
    def ask() -> None:
        click.confirm("Sure?", abort=True)

    result = ftops("ask", group=group, stdin="n\n")
    assert result.exit_code == 130
    assert result.stderr.strip() == "Interrupted."


SLOW_IMPORTS = ("openai", "deepdiff", "git", "werkzeug")
_PROBE = """
import contextlib, io, sys
from ftops.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(",".join(m for m in {names!r} if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [["--help"], ["schema"], ["validate"]])
def test_fast_commands_do_not_import_the_sdk_git_or_the_emulator(
        argv: list[str], tmp_path: Path) -> None:
    """The import rule behind startup_bench's targets (timing itself lives in benchmarks/)."""
    shutil.copytree(Path(__file__).resolve().parents[1] / "specs", tmp_path / "specs")
    git.Repo.init(tmp_path).close()
    probe = subprocess.run([sys.executable, "-c", _PROBE.format(names=SLOW_IMPORTS), *argv],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "", probe.stdout
