"""``--parallel N`` is one budget for every request an apply executes: looks, file creates,
upload parts, job creates and polls together never have more than N in flight at the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftops.apply import Executor
from ftops.commands import apply as apply_command
from ftops.commands import session
from ftops.emulator import Emulator
from ftops.project import load_project
from ftops.providers import Remote
from ftops.state import Actual
from tests.conftest import make_chat_jsonl, sdk_client
from tests.test_engine import Project, model

DATASETS = 4


@pytest.mark.parametrize("parallel", [2, 3, 4])
def test_parallel_bounds_every_request_in_flight(tmp_path: Path, parallel: int) -> None:
    proj = Project(tmp_path / "repo")
    proj.write({f"m{i}": model(f"d{i}", suffix=f"m{i}") for i in range(DATASETS)},
               data={f"d{i}": make_chat_jsonl(600, tag=f"d{i}") for i in range(DATASETS)})
    proj.commit()
    project = load_project(proj.specs)
    size = min(r.size for r in project.reports.values())
    with Emulator(job_seconds=0, latency_ms=20) as emu, sdk_client(emu.base_url) as sdk:
        remote = Remote(sdk, repo=project.desired.repo)
        # Read one listing at a time: only the execution is measured.
        actual = Actual(files=remote.files(), jobs=remote.jobs(), models=remote.models())
        plan = session.plan_for(project, {"openai": remote}, actual, prune=False,
                                allow_delete_models=False, today=None)
        outcome = Executor(plan, {"openai": remote}, root=project.root, parallel=parallel,
                           wait_for_jobs=True, threshold=size // 2,
                           part_size=size // 5 + 1).run()
        stats = emu.stats()
        parts = [r for r in emu.requests() if r["path"].endswith("/parts")]
    assert outcome.ok, outcome.failed
    assert (len(outcome.uploaded), len(outcome.started)) == (DATASETS, DATASETS)
    assert len(parts) >= DATASETS * 5  # every dataset went up in parts
    assert 2 <= stats["in_flight_peak"] <= parallel, stats


@pytest.mark.parametrize("parallel", [1, 3])
def test_parallel_bounds_the_whole_apply_reads_included(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: int) -> None:
    """`ftops apply --parallel N` as the CLI runs it: the plan's read (three listings), the
    execution, the mend and the lock's read all share the N slots."""
    proj = Project(tmp_path / "repo")
    proj.write({f"m{i}": model(f"d{i}", suffix=f"m{i}") for i in range(DATASETS)},
               data={f"d{i}": make_chat_jsonl(20, tag=f"d{i}") for i in range(DATASETS)})
    proj.commit()
    with Emulator(job_seconds=0, latency_ms=30) as emu:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
        run = apply_command.run(apply_command.ApplyOptions(
            specs=proj.specs, parallel=parallel, auto_approve=True, report=lambda _line: None,
            env={}))
        stats = emu.stats()
        reads = [r for r in emu.requests() if r["method"] == "GET"]
    assert (len(run.outcome.uploaded), len(run.outcome.started)) == (DATASETS, DATASETS)
    assert stats["in_flight_peak"] <= parallel, stats
    assert parallel == 1 or stats["in_flight_peak"] >= 2, stats
    # Whole-account reads list the models (the executor's looks do not): the plan's read
    # served as the look before executing, and the lock shares the mend's read.
    assert [r["path"] for r in reads].count("/v1/models") == 2
