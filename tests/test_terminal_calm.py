"""A calmer terminal (issue 19, item 7): grouped lifecycle lines, one cost format, a status
header, wait without repeats, one line for a JSON (not JSONL) file, connection errors that name
the URL and cause, a plan that counts what only --prune shows, progress bars on terminals only."""

from __future__ import annotations

import hashlib
import io
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_engine import KEY, THREE, Clock, Project

from ftops.cli import main
from ftops.cost import format_usd
from ftops.datasets import analyze
from ftops.emulator import Emulator
from ftops.render import progress
from tests.conftest import make_chat_jsonl, run_cli


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(job_seconds=60, clock=clock) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    proj = Project(tmp_path / "repo")
    proj.write(THREE)
    proj.commit()
    monkeypatch.chdir(proj.root)
    return proj


def ftops(project: Project, *args: str) -> str:
    result = run_cli(project.specs, *args)
    return result.stdout


# --- lifecycle warnings: one line per (provider, date), naming the models ----------------------

def test_each_lifecycle_line_names_its_models_once(project: Project) -> None:
    text = ftops(project, "plan")
    closing = [line for line in text.splitlines() if "stops accepting new" in line]
    shutdown = [line for line in text.splitlines() if "stop answering" in line]
    assert len(closing) == 1 and closing[0].endswith("(alpha, beta, gamma)"), text
    assert len(shutdown) == 1 and shutdown[0].count("alpha") == 1, text


# --- costs: one format everywhere --------------------------------------------------------------

def test_cost_format() -> None:
    assert [format_usd(v) for v in (0, 0.0077, 0.001, 0.000123, 0.01, 1.5, 1234.5)] == [
        "$0.00", "$0.0077", "$0.001", "$0.00012", "$0.01", "$1.50", "$1,234.50"]


def test_validate_plan_and_budget_show_the_same_cost(project: Project) -> None:
    validated = ftops(project, "validate")
    planned = ftops(project, "plan")
    said = next(line for line in validated.splitlines() if "estimated cost" in line)
    cost = said.rsplit("estimated cost ", 1)[1]
    assert cost.startswith("$0.00") and len(cost) > 5  # under a cent: not "$0.00"
    alpha = next(line for line in planned.splitlines() if "model.alpha" in line)
    assert alpha.endswith(f"est. {cost}"), (said, alpha)
    project.write({**THREE, "alpha": {**THREE["alpha"], "max_cost_usd": 0.001}})
    project.commit("a tiny budget")
    assert "exceeds the budget $0.001 " in ftops(project, "validate")
    assert "exceeds the budget $0.001 " in ftops(project, "plan")


# --- status: a header row ----------------------------------------------------------------------

def test_status_has_a_header_row(project: Project) -> None:
    lines = ftops(project, "status").splitlines()
    assert lines[0] == "as of 2026-12-01 (FTOPS_TODAY)"
    assert lines[1].split() == ["MODEL", "STATE", "STATUS", "JOB", "MODEL", "ID"]
    assert lines[2].split()[:2] == ["alpha", "train"]
    assert lines[1].index("STATE") == lines[2].index("train")


# --- wait: only what is new --------------------------------------------------------------------

def test_wait_prints_only_new_events_unless_all(project: Project, clock: Clock) -> None:
    assert run_cli(project.specs, "apply", "--auto-approve").exit_code == 0
    first = ftops(project, "wait", "alpha", "--timeout", "0")
    events = [line for line in first.splitlines() if line.startswith("model alpha: ")]
    assert len(events) >= 2
    again = ftops(project, "wait", "alpha", "--timeout", "0")
    assert not set(events) & set(again.splitlines()), again
    assert f"model alpha: {len(events)} earlier events already shown" in again
    everything = ftops(project, "wait", "alpha", "--timeout", "0", "--all")
    assert set(events) <= set(everything.splitlines())
    clock.now += 120
    done = ftops(project, "wait", "alpha", "--timeout", "5")
    assert not set(events) & set(done.splitlines())
    assert "model alpha: The job has successfully completed" in done
    assert done.splitlines()[-1].startswith("alpha: succeeded ft:")


# --- a JSON file that is not JSON Lines --------------------------------------------------------

def _examples(n: int) -> list[object]:
    return [json.loads(line) for line in make_chat_jsonl(n).decode().splitlines()]


@pytest.mark.parametrize(("text", "program"), [
    (lambda rows: json.dumps(rows, indent=2), "'.[]'"),
    (lambda rows: "\n".join(json.dumps(r, indent=2) for r in rows), "."),
])
def test_a_json_document_is_one_line_and_a_few_errors(tmp_path: Path, text: object,
                                                      program: str) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(text(_examples(40)))  # type: ignore[operator]
    out = CliRunner().invoke(main, ["validate", str(path)]).stdout
    assert f"convert it with `jq -c {program} {path} > {tmp_path / 'train.lines.jsonl'}`" in out
    assert out.count("invalid_json") <= 3, out
    assert "errors: 4" in out and "more (raise --max-errors" not in out


def test_jsonl_with_a_bad_line_gets_no_conversion_hint(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    lines = make_chat_jsonl(12).splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:2], b'{"messages": [\n', *lines[2:]]))
    out = CliRunner().invoke(main, ["validate", str(path)]).stdout
    assert "invalid_json" in out and "jq" not in out


# --- connection errors -------------------------------------------------------------------------

def test_connection_error_names_the_url_and_cause(project: Project,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    result = run_cli(project.specs, "plan")
    assert result.exit_code == 1
    assert f"cannot reach the API at http://127.0.0.1:{port}/v1: " in result.stderr
    assert "Connection refused" in result.stderr, result.stderr


# --- a plan that --prune would change ------------------------------------------------------------

def test_plan_counts_what_only_prune_shows(project: Project, clock: Clock) -> None:
    assert run_cli(project.specs, "apply", "--auto-approve").exit_code == 0
    clock.now += 120
    assert "No changes. The account matches the specs." in ftops(project, "plan")
    project.write({"alpha": THREE["alpha"], "beta": THREE["beta"]})
    project.commit("drop gamma")
    text = ftops(project, "plan")
    assert "The account matches the specs." not in text
    assert ("prune: the account holds 1 thing of this project that no spec declares "
            "(1 fine-tuned model); `ftops plan --prune` shows them") in text
    plan = json.loads(ftops(project, "plan", "--json"))
    assert [w["code"] for w in plan["warnings"]].count("undeclared") == 1


# --- progress bars -----------------------------------------------------------------------------

class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_outside_ci_and_json() -> None:
    assert progress.wanted(_Tty(), environ={})
    assert not progress.wanted(_Tty(), environ={"CI": "true"})
    assert not progress.wanted(_Tty(), as_json=True, environ={})
    assert not progress.wanted(io.StringIO(), environ={})


def test_bar_drawn_for_a_big_file_on_a_terminal(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(make_chat_jsonl(2000))
    size = path.stat().st_size / 1e6
    tty = _Tty()
    with progress.shown(tty, environ={}):
        analyze(path, chunk_bytes=4096)
    assert tty.getvalue() == ""  # under BIG_BYTES: no bar
    monkeypatch.setattr(progress, "BIG_BYTES", 1)
    with progress.shown(tty, environ={}):
        analyze(path, chunk_bytes=4096)
    drawn = tty.getvalue()
    assert drawn.startswith("\rreading big.jsonl [")
    assert drawn.endswith(f"100% {size:.1f}/{size:.1f} MB\n")
    assert drawn.count("\n") == 1


def test_no_bar_off_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "BIG_BYTES", 1)  # every file counts as big
    path = tmp_path / "big.jsonl"
    path.write_bytes(make_chat_jsonl(50))
    result = CliRunner().invoke(main, ["validate", str(path)])  # stderr is not a terminal
    assert result.exit_code == 0
    assert "reading" not in result.stderr and "\r" not in result.output


def test_bar_drawn_for_a_big_upload_in_parts(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A dataset that goes up in parts, from the executor's worker threads, draws an
    ``uploading`` bar that ends at 100 %."""
    from ftops.emulator import Emulator
    from ftops.providers import Remote
    from tests.conftest import sdk_client

    monkeypatch.setattr(progress, "BIG_BYTES", 1)
    path = tmp_path / "big.jsonl"
    path.write_bytes(make_chat_jsonl(400))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    size = path.stat().st_size
    tty = _Tty()
    with Emulator(job_seconds=0) as emu, sdk_client(emu.base_url) as sdk, \
            progress.shown(tty, environ={}), ThreadPoolExecutor(max_workers=1) as worker:
        remote = Remote(sdk, repo="r")
        worker.submit(remote.upload, path, sha, threshold=1, part_size=size // 4 + 1).result()
    drawn = tty.getvalue()
    assert "\ruploading big.jsonl [" in drawn
    assert drawn.endswith(f"100% {size / 1e6:.1f}/{size / 1e6:.1f} MB\n")
