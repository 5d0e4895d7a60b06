"""Shared fixtures: a fresh in-process emulator per test and a strict SDK client pointed at it.

The whole suite runs as of one pinned day (FTOPS_TODAY, set here before any test and inherited
by every process a test starts), so no test depends on the machine's date; likewise
FTOPS_EMULATOR_JOB_SECONDS=0 makes ``--emulator`` jobs end on the next read. Tests of other days
set their own with monkeypatch (tests/test_calendar.py runs the main flows on three days).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest
from click.testing import CliRunner, Result

from ftops.cli import main
from ftops.emulator import Emulator
from ftops.providers import loopback

SUITE_TODAY = "2026-12-01"
os.environ["FTOPS_TODAY"] = SUITE_TODAY
# `--emulator` jobs (and deployments) end on the next read, not after 3 s: a test that follows a
# job poll by poll uses a clock of its own, or sets its own duration with monkeypatch.
os.environ["FTOPS_EMULATOR_JOB_SECONDS"] = "0"
# Bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE, as in many
# containers): otherwise every xdist worker compiles and assertion-rewrites every test module
# again (measured: collection 9.7 s without a cache, 3.5 s with), and every child `ftops`
# process compiles ftops again. Only __pycache__ directories (git-ignored) are written.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


class Clock:
    """An emulator's wall clock, moved by the test: jobs end only when it says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_chat_jsonl(n: int = 10, *, tag: str = "", bad_line: int | None = None) -> bytes:
    """``n`` valid chat examples as JSONL bytes; ``tag`` varies the content (and so the hash);
    ``bad_line`` (1-based) replaces that line with an example that has no assistant message."""
    lines = []
    for i in range(1, n + 1):
        messages = [
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": f"Question {i}{tag}?"},
            {"role": "assistant", "content": f"Answer {i}{tag}."},
        ]
        if i == bad_line:
            messages = messages[:2]
        lines.append(json.dumps({"messages": messages}))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def chat_jsonl() -> Callable[..., bytes]:
    """The ``make_chat_jsonl`` helper, for tests that prefer fixtures to imports."""
    return make_chat_jsonl


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator on a free port; jobs finish on the next read (job_seconds=0)."""
    with Emulator(job_seconds=0) as emu:
        yield emu


# One TLS context for every SDK client the tests make, as ftops's own loopback clients share:
# a client left to make its own reads the CA bundle again (about 20 ms of CPU each).
LOOPBACK_TLS = loopback.tls()


def loopback_http_client() -> openai.DefaultHttpxClient:
    """The SDK's own HTTP client for the emulator: no proxy settings, the shared TLS context."""
    return openai.DefaultHttpxClient(trust_env=False, verify=LOOPBACK_TLS)


def sdk_client(base_url: str, *, max_retries: int = 0, strict: bool = True) -> openai.OpenAI:
    """The real SDK, strict about response shapes, ignoring proxy settings of the environment."""
    return openai.OpenAI(
        base_url=base_url,
        api_key="sk-test",
        max_retries=max_retries,
        _strict_response_validation=strict,
        http_client=loopback_http_client(),
    )


@pytest.fixture
def client(emulator: Emulator) -> Iterator[openai.OpenAI]:
    """A strict SDK client for ``emulator``; no retries, so errors surface at once."""
    with sdk_client(emulator.base_url) as sdk:
        yield sdk


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    url: str,
    method: str = "GET",
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> RawResponse:
    """One plain HTTP request (no SDK, no retries, no proxy): for auth and malformed requests."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return RawResponse(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


@contextlib.contextmanager
def cli_emulator(*options: str, url: str = r"serving (http://127\.0\.0\.1:\d+/v1)"
                 ) -> Iterator[str]:
    """Runs ``ftops emulator --port 0 OPTIONS`` as a process; yields the URL its banner shows
    (the first group of ``url``), then sends Ctrl+C and checks that it stopped cleanly."""
    ftops = Path(sys.executable).parent / "ftops"
    proc = subprocess.Popen(
        [str(ftops), "emulator", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        found = re.search(url, banner)
        assert found, banner
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert err == ""


def run_cli(specs: Path, *args: str) -> Result:
    """``ftops COMMAND --specs SPECS ARGS`` in-process; stdin is not a terminal, as in CI. An
    exception other than the exit itself means a traceback reached the user: the test fails."""
    result = CliRunner().invoke(main, [args[0], "--specs", str(specs), *args[1:]])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.hookimpl(optionalhook=True)  # an xdist hook: `-p no:xdist` runs know nothing of it
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: a worker more than there are cores. About half of a test's time here is
    spent waiting (on SDK back-offs, child ``ftops`` processes, emulators shutting down), which
    the extra worker fills; measured on 2 cores, the suite took 149 s with 2 workers, 130 s with
    3 and 123 s with 4, but each worker also pays about 10 s of CPU to collect the suite, and
    with 4 the tests that bound a time (a child's first line within 8 s) failed under load.
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or config.option.numprocesses != "auto":
        return None  # xdist's own rules
    return len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else None


# The tests that take seconds (child processes, real applies under faults, a wheel build), run
# first, and xdist hands tests out two at a time (``--maxschedchunk 1``, unless given): in its
# default chunks of ~77 consecutive tests, the slow ones would all go to one worker, and a long
# test started last keeps its worker busy while the others sit idle.
SLOW_FIRST = (
    "tests/test_packaging.py",
    "tests/test_properties.py::test_repeated_apply_converges_exactly_once",
    "tests/test_engine.py::test_kill_at_several_moments_then_finish",
    "tests/test_open_weight_faults.py",
    "tests/test_open_weight_kill.py",
    "tests/test_stop.py",
    "tests/test_open_weight.py::test_one_spec_on_five_providers",
    "tests/test_emulator_fuzz.py::test_generated_requests",
    "tests/test_engine.py::test_apply_asks_for_confirmation_on_a_terminal",
    "tests/test_engine.py::test_two_applies_at_once",
    "tests/test_azure.py::test_jobs_without_metadata_are_recognised_under_faults",
    "tests/test_providers.py::test_fallback_notice_is_one_line_on_stderr",
    "tests/test_emulator_server.py::test_cli_demo_validates_plans_and_applies_the_demo_specs",
    "tests/test_migrate.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, slow in enumerate(SLOW_FIRST) if item.nodeid.startswith(slow)),
                    len(SLOW_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "maxschedchunk", 0) is None:  # xdist's, and not given
        config.option.maxschedchunk = 1
