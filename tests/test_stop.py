"""Stop when asked: a real ``ftops`` process gets SIGINT or SIGTERM while it uploads, between a
job create and the look that settles it, and while it follows a job. It starts nothing more,
writes ftops.lock with what it started, says how to go on and exits 130 (143 for SIGTERM); a
second signal ends it at once; the next apply starts nothing twice."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ftops.emulator import Emulator
from tests.test_engine import FTOPS, KEY, THREE, Project, account, assert_exactly_once, ftops


class Running:
    """``ftops ARGS`` as a process; its stdout lines are read as they come."""

    def __init__(self, project: Project, emu: Emulator, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=emu.base_url)
        self.proc = subprocess.Popen([str(FTOPS), *args, "--specs", str(project.specs)],
                                     cwd=project.root, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def until(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            try:
                self.seen.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"no {text!r} in {self.seen}") from None

    def end(self, timeout: float = 20) -> tuple[int, str]:
        """The exit code and stderr, once the process has ended."""
        assert self.proc.stderr is not None
        code = self.proc.wait(timeout=timeout)
        return code, self.proc.stderr.read()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(job_seconds=60, latency_ms=100) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> Project:
    proj = Project(tmp_path / "repo")
    proj.write(THREE)
    proj.commit()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    return proj


def jobs_of(emu: Emulator) -> list[str]:
    return sorted(job.id for job in account(emu)[1])


def apply_again_starts_nothing_twice(project: Project, emu: Emulator) -> None:
    emu.latency = 0
    result = ftops(project, "apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert_exactly_once(emu, project)


@pytest.mark.parametrize(("when", "signum"), [
    ("uploading", signal.SIGINT),  # an upload in flight
    ("starting a job", signal.SIGTERM),  # a job create in flight, not yet settled by a look
])
def test_a_signal_stops_apply_keeping_what_it_started(project: Project, emu: Emulator,
                                                      when: str, signum: int) -> None:
    # One create a round: the round in flight when the signal comes holds one create.
    run = Running(project, emu, "apply", "--auto-approve", "--parallel", "2")
    run.until(when)
    if when == "starting a job":  # once the emulator has made it, before a look settles it
        deadline = time.monotonic() + 5
        while not any(r["method"] == "POST" and r["path"] == "/v1/fine_tuning/jobs"
                      for r in emu.requests()) and time.monotonic() < deadline:
            time.sleep(0.01)
    run.proc.send_signal(signum)
    code, err = run.end()
    assert code == 128 + signum, err
    assert f"Stopped by {signal.Signals(signum).name}." in err
    assert "`ftops wait`" in err and "`ftops apply`" in err
    started = jobs_of(emu)
    locked = {entry["job_id"] for entry in project.lock()["models"].values()}
    assert locked == set(started)  # every job started is in the lock, settled by one look
    assert len(started) < 3  # it stopped starting work
    if when == "starting a job":
        assert started
    apply_again_starts_nothing_twice(project, emu)


def test_a_signal_while_following_ends_the_wait_at_once(project: Project,
                                                        emu: Emulator) -> None:
    run = Running(project, emu, "apply", "--auto-approve", "--wait")
    run.until("started job")
    asked = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    code, err = run.end()
    assert code == 130, err
    assert time.monotonic() - asked < 5  # the job runs for 60 s: the wait did not
    assert "SIGINT: stopping; nothing new is started" in err
    assert "Ctrl+C again stops at once" in err
    locked = yaml.safe_load((project.root / "ftops.lock").read_text())["models"]
    assert {e["job_id"] for e in locked.values()} == set(jobs_of(emu))
    assert {e["status"] for e in locked.values()} <= {"validating_files", "queued", "running"}
    apply_again_starts_nothing_twice(project, emu)


def following(project: Project, emu: Emulator) -> Running:
    """``ftops wait`` following the jobs an apply started, once it has polled them."""
    emu.latency = 0
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    emu.latency = 0.1
    run = Running(project, emu, "wait")
    run.until("model ")
    return run


def test_wait_stops_on_sigterm_and_writes_the_lock(project: Project, emu: Emulator) -> None:
    run = following(project, emu)
    run.proc.send_signal(signal.SIGTERM)
    code, err = run.end()
    assert code == 143, err
    assert "SIGTERM: stopping" in err and "(another signal stops at once)" in err
    assert "Stopped by SIGTERM.\nftops.lock lists everything started so far" in err
    assert "`ftops wait` follows them again" in err
    locked = {e["job_id"] for e in project.lock()["models"].values()}
    assert locked == set(jobs_of(emu))


def test_a_second_signal_exits_at_once(project: Project, emu: Emulator) -> None:
    run = following(project, emu)
    emu.latency = 2  # the look that settles the stop takes longer than the second signal
    run.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    asked = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    code, err = run.end()
    assert code == 130, err
    assert time.monotonic() - asked < 1.5
    assert "SIGINT again: stopped at once" in err


def test_eval_stops_sending_chat_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import test_evals

    proj = test_evals.Project(tmp_path / "evals")
    proj.write()
    proj.commit()
    with Emulator(job_seconds=0) as emu:
        test_evals.point_at(monkeypatch, emu)
        assert test_evals.apply(proj).exit_code == 0  # trained, evaluated, cached
        for cached in (proj.root / ".ftops" / "evals").glob("*.json"):
            cached.unlink()  # so that eval asks again
        emu.latency = 0.3
        chats = len(test_evals.chat_requests(emu))
        run = Running(Project(proj.root), emu, "eval", "--parallel", "2")
        deadline = time.monotonic() + 8
        while len(test_evals.chat_requests(emu)) == chats and time.monotonic() < deadline:
            time.sleep(0.05)
        run.proc.send_signal(signal.SIGINT)
        code, err = run.end()
        sent = len(test_evals.chat_requests(emu)) - chats
    assert code == 130, err
    assert "`ftops eval` goes on from there" in err
    assert 1 <= sent <= 4  # those in flight returned; the other 16 were never sent
