"""Issue "Open-weight fine-tuning providers", item 2, a SIGKILL mid-apply: on each of Nebius,
Together and Fireworks (no job metadata, no state file), ``ftops apply`` processes killed right
after the provider made their first change, then their first job, and the apply that finishes
after them leave exactly one dataset upload and one live job per model; one more does nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ftops.emulator import Emulator
from ftops.project import load_project
from tests.conftest import run_cli
from tests.test_open_weight import write
from tests.test_open_weight_faults import FTOPS, TYPES, account_state, models, spec_provider

pytest.importorskip("together")
pytest.importorskip("fireworks")


# Where each dialect creates a job (a POST there is the first job of a run).
JOBS = {"nebius": "/v1/fine_tuning/jobs", "together": "/v1/fine-tunes",
        "fireworks": "/v1/accounts/acme/supervisedFineTuningJobs"}


def changes(server: Emulator, since: int) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in server.requests()[since:]
            if r["method"] != "GET"]


@pytest.mark.parametrize("kind", TYPES)
def test_killed_applies_leave_one_of_each(tmp_path: Path, kind: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OW_KEY", "ow-key")
    with Emulator(flavor=kind, job_seconds=3600, latency_ms=5, retry_after=0) as server:
        project = write(tmp_path / "repo", models(kind), {"ow": spec_provider(kind, server)})
        env = {**os.environ, "OW_KEY": "ow-key"}
        job = f"POST {JOBS[kind]}"
        load_project(project.specs)  # the datasets analysed (and cached) here, not in a child
        # The first run is killed right after its first change (an upload begun), the second
        # right after its first job was created: each child costs a second or two (the SDK's
        # import), so two, and the run that finishes is in-process.
        killed: list[list[str]] = []
        for cut in (lambda made: bool(made), lambda made: job in made):
            start = len(server.requests())
            proc = subprocess.Popen([str(FTOPS), "apply", "--auto-approve", "--specs",
                                     str(project.specs)], env=env, cwd=project.root,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            while not cut(changes(server, start)) and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.002)
            assert proc.poll() is None, proc.communicate()[1].decode()  # it had more to do
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            killed.append(changes(server, start))
        assert job not in killed[0] and job in killed[1], killed
        result = run_cli(project.specs, "apply", "--auto-approve")
        assert result.exit_code == 0, result.output
        again = run_cli(project.specs, "apply", "--auto-approve")
        assert "Apply complete: 0 uploaded, 0 started" in again.output, again.output
        files, jobs = account_state(project)
        assert len(files) == 1, files
        live = sorted(j.metadata["ftops_model"] for j in jobs if j.live)
        assert live == ["m0", "m1"], [(j.id, j.status) for j in jobs]
