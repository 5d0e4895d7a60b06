"""Apply sends no read that repeats one just made: the read apply checked the plan against is
the upload pipeline's first look, the upload pipeline's last look also opens the job pipeline,
and the job pipeline's last look reads the whole account the mend and ftops.lock are made from.
Every create is still looked for before it is sent and looked at after it returned."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ftops.commands import apply as apply_command
from ftops.emulator import Emulator
from tests.conftest import make_chat_jsonl
from tests.test_engine import Project, model

N = 5


@pytest.mark.parametrize("parallel", [1, 4])
def test_no_read_repeats_the_one_just_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           parallel: int) -> None:
    proj = Project(tmp_path / "repo")
    proj.write({f"m{i}": model(f"d{i}", suffix=f"m{i}") for i in range(N)},
               data={f"d{i}": make_chat_jsonl(12, tag=f"d{i}") for i in range(N)})
    proj.commit()
    with Emulator(job_seconds=60) as emu:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
        run = apply_command.run(apply_command.ApplyOptions(
            specs=proj.specs, parallel=parallel, auto_approve=True, report=lambda _line: None,
            env={}))
        entries = emu.requests()
    assert (len(run.outcome.uploaded), len(run.outcome.started)) == (N, N)
    assert {m.job_id for m in run.lock.models.values()} == set(run.outcome.started.values())
    # The plan's read (three listings); a look per round of creates (at --parallel 1 a round's
    # create goes before its look, so the last look settles it), the upload pipeline's last
    # one listing the jobs too and the job pipeline's last one the whole account. Before, each
    # pipeline's first look repeated the plan's read, and a read repeated the last look.
    looks = -(-N // max(1, parallel - 1)) + (parallel > 1)
    gets = Counter(e["path"] for e in entries if e["method"] == "GET")
    assert gets == {"/v1/files": looks + 2, "/v1/fine_tuning/jobs": looks + 2, "/v1/models": 2}
