"""The one Diagnostic (spec problems, dataset findings, plan notices) and the kinds of
FtopsError, each raised by a real bad input and reported through the CLI with its exit code."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest
import yaml
from click.testing import Result
from test_datasets import analyze_data

from ftops.datasets import DatasetReport
from ftops.errors import (
    DataError,
    Diagnostic,
    ExitCode,
    FtopsError,
    Place,
    RemoteError,
    SpecError,
    StalePlanError,
    UsageError,
)
from ftops.github.client import GitHubApi
from ftops.plan import Plan
from tests.conftest import make_chat_jsonl, run_cli

# --- Diagnostic: each view's str and JSON, and back ------------------------------------------


def test_spec_form_prints_path_and_line_and_keeps_validates_json() -> None:
    d = Diagnostic("error", "unknown_key", "models.m: unknown key 'sufix'", path="specs/m.yaml",
                   line=13)
    assert d.form == "spec"
    assert str(d) == "specs/m.yaml:13: models.m: unknown key 'sufix'"
    assert d.to_dict() == {"file": "specs/m.yaml", "line": 13, "code": "unknown_key",
                           "message": "models.m: unknown key 'sufix'"}
    assert Diagnostic.from_dict(d.to_dict(), severity="error") == d
    whole_file = Diagnostic("error", "file_not_found", "no such file", path="x.jsonl")
    assert str(whole_file) == "x.jsonl: no such file"
    assert Diagnostic.from_dict(whole_file.to_dict(), severity="error") == whole_file


def test_dataset_form_has_a_line_and_keeps_validates_and_the_caches_json() -> None:
    d = Diagnostic("warning", "duplicate_example", "same example as line 3", line=11)
    assert d.form == "dataset"
    assert str(d) == "line 11: duplicate_example: same example as line 3"
    assert d.to_dict() == {"line": 11, "code": "duplicate_example",
                           "message": "same example as line 3"}
    assert Diagnostic.from_dict(d.to_dict(), severity="warning") == d
    whole_file = Diagnostic("error", "too_few_examples", "file has 1 example(s)", line=0)
    assert str(whole_file) == "too_few_examples: file has 1 example(s)"
    assert whole_file.to_dict()["line"] == 0  # validate --json has always said 0, not null


def test_plan_form_prints_subject_and_keeps_the_plans_keys() -> None:
    plain = Diagnostic("error", "over_budget", "too expensive", subject="model.bot")
    assert plain.form == "plan"
    assert str(plain) == "model.bot: too expensive"
    assert plain.to_dict() == {"code": "over_budget", "subject": "model.bot",
                               "message": "too expensive"}  # no "places" key when none
    assert Diagnostic.from_dict(plain.to_dict(), severity="error") == plain
    grouped = Diagnostic("warning", "provider_closing", "stops on 2027-01-06",
                         subject="provider.openai",
                         places=(Place("model.a", "specs/m.yaml", 3), Place("model.b", "")))
    assert grouped.to_dict()["places"] == [
        {"subject": "model.a", "path": "specs/m.yaml", "line": 3},
        {"subject": "model.b", "path": "", "line": None},
    ]
    assert Diagnostic.from_dict(grouped.to_dict(), severity="warning") == grouped
    assert [str(p) for p in grouped.places] == ["specs/m.yaml:3 (model.a)", "model.b"]


def test_a_hint_follows_the_message_as_in_ftops_error() -> None:
    d = Diagnostic("error", "c", "bad", path="a.yaml", line=1, hint="fix it")
    assert str(d) == str(FtopsError("bad", path="a.yaml", line=1, hint="fix it"))


def test_a_saved_plan_gives_its_notices_the_severity_of_their_list() -> None:
    warning = Diagnostic("warning", "cost_unknown", "no price", subject="model.a")
    error = Diagnostic("error", "over_budget", "too expensive", subject="model.b")
    plan = Plan(actions=(), warnings=(warning,), errors=(error,))
    again = Plan.from_json(plan.to_json())
    assert (again.warnings, again.errors) == ((warning,), (error,))
    assert json.loads(plan.to_json())["errors"] == [
        {"code": "over_budget", "subject": "model.b", "message": "too expensive"}]
    with pytest.raises(ValueError, match="not of severity error"):
        Plan(actions=(), errors=(warning,))


def test_a_dataset_report_round_trips_with_findings_in_the_caches_old_shape() -> None:
    lines = make_chat_jsonl(12).decode().splitlines()
    lines[2], lines[5] = "{not json", lines[4]
    report = analyze_data(("\n".join(lines) + "\n").encode())
    assert [(f.severity, f.line, f.code) for f in report.errors + report.warnings] == [
        ("error", 3, "invalid_json"), ("warning", 6, "duplicate_example")]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["errors"] == [{"line": 3, "code": "invalid_json",
                               "message": report.errors[0].message}]
    assert DatasetReport.from_dict(data) == report
    first = report.diagnostics()[0]
    assert (first.form, first.severity, first.line) == ("spec", "error", 3)


# --- error kinds: one real bad input each, through the CLI -------------------------------------


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed repository with one valid model and dataset; returns its spec directory."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)  # as on a laptop, also in CI
    specs = tmp_path / "repo" / "specs"
    (specs / "data").mkdir(parents=True)
    (specs / "data" / "train.jsonl").write_bytes(make_chat_jsonl(12))
    (specs / "datasets.yaml").write_text(yaml.safe_dump({
        "datasets": {"train": {"path": "data/train.jsonl"}},
        "base_models": {"mini": "gpt-4o-mini-2024-07-18"}}))
    write_models(specs, {"base": "mini", "training": "train",
                         "hyperparameters": {"n_epochs": 3}, "seed": 1})
    commit(specs)
    return specs


def write_models(specs: Path, bot: dict[str, object]) -> None:
    (specs / "models.yaml").write_text(yaml.safe_dump({"models": {"bot": bot}}))


def commit(specs: Path) -> None:
    with git.Repo.init(specs.parent) as repo:
        with repo.config_writer() as config:
            config.set_value("user", "name", "t")
            config.set_value("user", "email", "t@example.invalid")
        repo.git.add(A=True)
        repo.index.commit("specs")


def raised(result: Result, kind: type[FtopsError]) -> FtopsError:
    """The error the handler reported: exit 1, one ``Error:`` line first, of ``kind``."""
    assert result.exit_code == ExitCode.ERROR == kind.exit_code, result.output
    assert result.stderr.startswith("Error: ")
    assert isinstance(result.exception, SystemExit)
    cause = result.exception.__cause__  # the CLI chains the original for in-process callers
    assert isinstance(cause, kind), repr(cause)
    return cause


def test_an_invalid_spec_raises_spec_error_with_every_problem(specs: Path) -> None:
    write_models(specs, {"base": "mini", "training": "train", "sufix": "x", "seedd": 1})
    result = run_cli(specs, "plan", "--emulator")
    error = raised(result, SpecError)
    assert [(d.severity, d.form) for d in error.diagnostics] == [("error", "spec")] * 2
    # The first problem is the message; the handler prints the others below it.
    assert result.stderr.splitlines()[1:] == [f"Error: {d}" for d in error.diagnostics[1:]]


def test_a_dataset_with_errors_raises_data_error(specs: Path) -> None:
    (specs / "data" / "train.jsonl").write_bytes(make_chat_jsonl(12, bad_line=4))
    error = raised(run_cli(specs, "plan", "--emulator"), DataError)
    assert "dataset train has 1 error(s)" in str(error)


def test_a_plan_saved_before_the_data_changed_raises_stale_plan_error(
        specs: Path, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    assert run_cli(specs, "plan", "--emulator", "--out", str(saved)).exit_code == 0
    (specs / "data" / "train.jsonl").write_bytes(make_chat_jsonl(12, tag="new"))
    commit(specs)
    error = raised(run_cli(specs, "apply", str(saved), "--emulator"), StalePlanError)
    assert str(error).startswith("Saved plan is stale: ")


def test_comment_outside_github_actions_raises_usage_error(specs: Path) -> None:
    result = run_cli(specs, "plan", "--emulator", "--comment")
    raised(result, UsageError)
    assert result.stderr == ("Error: --comment works only in GitHub Actions (GITHUB_ACTIONS is "
                             "not true) (drop --comment when running locally)\n")


def test_an_unreachable_github_api_raises_remote_error() -> None:
    api = GitHubApi("http://127.0.0.1:9", "token", timeout=5)  # the discard port: refused
    with pytest.raises(RemoteError, match="cannot reach the GitHub API"):
        api.request("GET", "/repos/o/r")
