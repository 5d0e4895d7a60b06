"""Each command's ``run(options)`` called directly, without click: what the CLI renders is the
result these return (the CLI's own tests cover the rendering and the exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftops.commands import demo, export, plan, schema, status, validate, wait
from ftops.commands.apply import ApplyOptions
from ftops.commands.apply import run as apply_run
from ftops.emulator import Emulator
from tests.test_engine import KEY, THREE, Project

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema" / "ftops.schema.json"
SPECS = Path(__file__).resolve().parents[1] / "specs"


@pytest.fixture
def project(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("OPENAI_BASE_URL", emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    project = Project(tmp_path / "repo")
    project.write(THREE)
    project.commit()
    return project


def test_validate_and_schema_run_offline() -> None:
    report = validate.run(validate.ValidateOptions(specs=SPECS))
    assert report.ok
    assert json.loads(report.to_json())["ok"] is True
    assert schema.run() == SCHEMA_FILE.read_text(encoding="utf-8")


def test_plan_apply_wait_status_export_through_their_options(project: Project) -> None:
    planned = plan.run(plan.PlanOptions(specs=project.specs, env={}))
    assert planned.plan is not None and planned.plan.summary["train"] == 3
    applied = apply_run(ApplyOptions(specs=project.specs, report=lambda _line: None, env={}))
    assert sorted(applied.outcome.started) == ["alpha", "beta", "gamma"]
    waited = wait.run(wait.WaitOptions(specs=project.specs, report=lambda _line: None))
    assert waited.ok and sorted(waited.jobs) == ["alpha", "beta", "gamma"]
    seen = status.run(status.StatusOptions(specs=project.specs))
    assert {row["name"]: row["state"] for row in seen.rows} == {
        "alpha": "ok", "beta": "ok", "gamma": "ok"}
    bundles = export.run(export.ExportOptions(names=("alpha",), specs=project.specs,
                                              out=project.root / "out"))
    assert sorted(bundles.bundles) == ["alpha"] and not bundles.skipped
    assert (project.root / "out" / "alpha" / "job.json").exists()


def test_demo_runs_with_an_echo_of_its_own() -> None:
    lines: list[str] = []
    models = demo.run(demo.DemoOptions(specs=SPECS, job_seconds=0, echo=lines.append))
    assert sorted(models) == ["support-bot", "support-bot-tone"]
    assert "\nFine-tuned models (from ftops.lock):" in lines
