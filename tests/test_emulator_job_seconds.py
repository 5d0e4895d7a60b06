"""``FTOPS_EMULATOR_JOB_SECONDS``: how long ``--emulator`` jobs take (the suite sets 0 in
conftest); unset, 3 s; a value that is no duration is one line naming the variable, before
any emulator starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftops.commands.emulated import JOB_SECONDS_ENV, default_job_seconds
from tests.test_engine import LIVE, THREE, Project, ftops


def statuses(project: Project) -> set[str]:
    shown = ftops(project, "status", "--emulator", "--json")
    assert shown.exit_code == 0, shown.output
    return {row["status"] for row in json.loads(shown.stdout)["models"]}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    proj = Project(tmp_path / "repo")
    proj.write(THREE)
    proj.commit()
    return proj


@pytest.mark.parametrize(("seconds", "after_apply"), [
    ("0", {"succeeded"}),  # done on the next read
    ("600", set(LIVE)),  # still live when status looks
])
def test_the_variable_sets_how_long_emulated_jobs_take(
        project: Project, monkeypatch: pytest.MonkeyPatch, seconds: str,
        after_apply: set[str]) -> None:
    monkeypatch.setenv(JOB_SECONDS_ENV, seconds)
    applied = ftops(project, "apply", "--emulator", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert statuses(project) <= after_apply


def test_unset_or_empty_it_is_three_seconds() -> None:
    assert default_job_seconds({}) == 3.0
    assert default_job_seconds({JOB_SECONDS_ENV: " "}) == 3.0
    assert default_job_seconds({JOB_SECONDS_ENV: "0.25"}) == 0.25


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_value_that_is_no_duration_is_one_line(
        project: Project, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(JOB_SECONDS_ENV, value)
    result = ftops(project, "apply", "--emulator", "--auto-approve")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {JOB_SECONDS_ENV}={value!r} is not a number of seconds "
                             f"(use 0 or more, e.g. {JOB_SECONDS_ENV}=0.5, or unset it)\n")
    assert "Traceback" not in result.output
    assert not (project.root / ".ftops" / "emulator").exists()  # no emulator, no request
