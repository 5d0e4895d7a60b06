"""End-to-end: the real ``ftops`` CLI (in-process, or as a subprocess where crashes and races
need one) against the emulator over HTTP, in real git repositories under tmp_path."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import git
import pytest
import yaml
from click.testing import Result

from ftops.emulator import Emulator
from ftops.errors import FtopsError
from ftops.identity import dataset_filename, fingerprints, job_metadata
from ftops.project import LOCK_FILE, load_project
from ftops.providers import Remote
from tests.conftest import make_chat_jsonl, raw_request, run_cli, sdk_client

KEY = "sk-test-SECRET-4f9c2a7e1b3d5f60"
FTOPS = Path(sys.executable).with_name("ftops")
BASE = "gpt-4o-mini-2024-07-18"
LIVE = ("validating_files", "queued", "running", "paused")


# --- a project: specs and datasets committed in a real git repository -----------------------


def model(training: str, *, base: str = "mini", epochs: int = 3, **extra: Any) -> dict[str, Any]:
    return {"base": base, "training": training, "hyperparameters": {"n_epochs": epochs},
            "seed": 42, **extra}


THREE = {
    "alpha": model("train-a", suffix="alpha", metadata={"team": "a"}),
    "beta": model("train-b", suffix="beta"),
    "gamma": model("train-a", epochs=2, suffix="gamma"),  # shares alpha's dataset
}


@dataclass
class Project:
    root: Path

    @property
    def specs(self) -> Path:
        return self.root / "specs"

    def write(self, models: dict[str, Any], data: dict[str, bytes] | None = None) -> None:
        data = data if data is not None else {"train-a": make_chat_jsonl(12, tag="a"),
                                              "train-b": make_chat_jsonl(12, tag="b")}
        (self.specs / "data").mkdir(parents=True, exist_ok=True)
        for name, content in data.items():
            (self.specs / "data" / f"{name}.jsonl").write_bytes(content)
        datasets = {"datasets": {n: {"path": f"data/{n}.jsonl"} for n in data},
                    "base_models": {"mini": BASE}}
        (self.specs / "datasets.yaml").write_text(yaml.safe_dump(datasets, sort_keys=True))
        (self.specs / "models.yaml").write_text(yaml.safe_dump({"models": models}, sort_keys=True))

    def commit(self, message: str = "specs") -> None:
        repo = git.Repo.init(self.root)
        with repo.config_writer() as config:
            config.set_value("user", "name", "t")
            config.set_value("user", "email", "t@example.invalid")
        repo.git.add(A=True)
        repo.index.commit(message)
        repo.close()

    def lock(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / LOCK_FILE).read_text())

    def fingerprints(self) -> dict[str, str]:
        return fingerprints(load_project(self.specs).desired)


class Clock:
    """The emulator's clock, moved by the test: jobs end only when it says so."""

    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def project(tmp_path: Path) -> Project:
    proj = Project(tmp_path / "repo")
    proj.write(THREE)
    proj.commit()
    return proj


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(job_seconds=60, clock=clock) as server:
        yield server


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> dict[str, str]:
    """The SDK's own variables, pointing the CLI at ``emu``; no proxy for loopback."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    return {**os.environ}


def ftops(project: Project, *args: str) -> Result:
    return run_cli(project.specs, *args)


def log(server: Emulator) -> list[dict[str, Any]]:
    """The request log, read the way any client would: ``GET /_emulator/requests``."""
    return raw_request(server.url + "/_emulator/requests").json()  # type: ignore[no-any-return]


def mutations(server: Emulator, since: int = 0) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in server.requests()[since:]
            if r["method"] != "GET"]


def account(server: Emulator) -> tuple[list[Any], list[Any]]:
    """Files and jobs as they are; retried, as the server may be injecting faults."""
    with sdk_client(server.base_url, max_retries=10) as sdk:
        files = list(sdk.files.list(purpose="fine-tune", limit=10_000))
        jobs = list(sdk.fine_tuning.jobs.list(limit=100))
    return files, jobs


def assert_exactly_once(server: Emulator, project: Project) -> None:
    """One file per dataset hash, one live-or-succeeded job per declared fingerprint."""
    files, jobs = account(server)
    ours = Counter(f.filename for f in files if f.filename.startswith("ftops-"))
    assert sorted(ours.values()) == [1, 1]
    kept = Counter(j.metadata["ftops_fingerprint"] for j in jobs
                   if j.status in (*LIVE, "succeeded"))
    assert kept == Counter(project.fingerprints().values())


def ftops_name(data: bytes) -> str:
    return dataset_filename(hashlib.sha256(data).hexdigest())


def actions(result: Result) -> dict[str, str]:
    """``address -> action`` from ``plan --json``."""
    return {a["address"]: a["action"] for a in json.loads(result.stdout)["actions"]}


# --- plan: every action --------------------------------------------------------------------


def test_plan_on_empty_account_reads_only_and_few(project: Project, emu: Emulator,
                                                  env: dict[str, str]) -> None:
    result = ftops(project, "plan", "--json", "--detailed-exitcode")
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["format_version"] == 1
    assert {"actions", "summary"} <= set(out)
    assert out["summary"]["upload"] == 2 and out["summary"]["train"] == 3
    assert actions(result) == {"dataset.train-a": "upload", "dataset.train-b": "upload",
                               "model.alpha": "train", "model.beta": "train",
                               "model.gamma": "train"}
    requests = log(emu)
    assert {r["method"] for r in requests} == {"GET"}
    assert len(requests) <= 6


def test_plan_out_and_text(project: Project, emu: Emulator, env: dict[str, str],
                           tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = ftops(project, "plan", "--out", str(out))
    assert result.exit_code == 0
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [line[:3] for line in lines if line[:1] == ["+"]] == [
        ["+", "upload", "dataset.train-a"], ["+", "upload", "dataset.train-b"],
        ["+", "train", "model.alpha"], ["+", "train", "model.beta"],
        ["+", "train", "model.gamma"]]
    summary = next(line for line in result.stdout.splitlines() if line.startswith("Plan: "))
    assert summary.startswith("Plan: 2 to upload, 3 to train, 0 to replace, 0 to delete. "
                              "Estimated cost: $")
    saved = json.loads(out.read_text())
    assert saved["format_version"] == 1
    assert len(saved["actions"]) == 5
    assert mutations(emu) == []


def test_apply_then_ok_pending_and_idempotent(project: Project, emu: Emulator, clock: Clock,
                                              env: dict[str, str]) -> None:
    first = ftops(project, "apply", "--auto-approve")
    assert first.exit_code == 0, first.output
    assert "Apply complete: 2 uploaded, 3 started, 0 pruned" in first.stdout
    assert actions(ftops(project, "plan", "--json")) == {
        "model.alpha": "pending", "model.beta": "pending", "model.gamma": "pending"}
    before = len(log(emu))
    second = ftops(project, "apply", "--auto-approve")
    assert second.exit_code == 0, second.output
    assert "Apply complete: 0 uploaded, 0 started, 0 pruned" in second.stdout
    assert mutations(emu, before) == []
    clock.now += 120
    done = ftops(project, "plan", "--json", "--detailed-exitcode")
    assert done.exit_code == 0
    assert set(actions(done).values()) == {"ok"}
    assert_exactly_once(emu, project)


def test_lock_and_status_after_apply(project: Project, emu: Emulator, clock: Clock,
                                     env: dict[str, str]) -> None:
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    clock.now += 120
    status = ftops(project, "status", "--json")
    assert status.exit_code == 0
    rows = {r["name"]: r for r in json.loads(status.stdout)["models"]}
    assert sorted(rows) == ["alpha", "beta", "gamma"]
    _, jobs = account(emu)
    by_model = {j.metadata["ftops_model"]: j for j in jobs}
    prints = project.fingerprints()
    locked = project.lock()["models"]
    for name, row in rows.items():
        job = by_model[name]
        assert row["state"] == "ok"
        assert row["status"] == "succeeded"
        assert row["job_id"] == job.id
        assert row["fine_tuned_model"] == job.fine_tuned_model
        assert job.fine_tuned_model is not None and job.fine_tuned_model.startswith("ft:")
        assert locked[name] == {"fingerprint": prints[name], "job_id": job.id,
                                "status": "succeeded", "fine_tuned_model": job.fine_tuned_model,
                                "trained_tokens": job.trained_tokens}
        assert job.trained_tokens and job.trained_tokens > 0


def test_replace_shows_field_diff_and_metadata_is_not_a_retrain(
        project: Project, emu: Emulator, clock: Clock, env: dict[str, str]) -> None:
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    clock.now += 120
    project.write({**THREE, "alpha": {**THREE["alpha"], "metadata": {"team": "b"}}})
    project.commit("relabel")
    relabel = ftops(project, "plan", "--json", "--detailed-exitcode")
    assert actions(relabel)["model.alpha"] == "ok"
    project.write({**THREE, "beta": model("train-b", epochs=2, suffix="beta")})
    project.commit("epochs")
    text = ftops(project, "plan")
    assert "hyperparameters.n_epochs: 3 -> 2" in text.stdout
    assert any(line.split()[:3] == ["~", "replace", "model.beta"]
               for line in text.stdout.splitlines())
    assert "0 to upload, 0 to train, 1 to replace, 0 to delete" in text.stdout
    replace = next(a for a in json.loads(ftops(project, "plan", "--json").stdout)["actions"]
                   if a["name"] == "beta")
    assert {"action", "kind", "name", "changes"} <= set(replace)
    assert {"path": "hyperparameters.n_epochs", "before": 3, "after": 2} in replace["changes"]
    assert actions(ftops(project, "plan", "--json"))["model.beta"] == "replace"
    before = len(log(emu))
    applied = ftops(project, "apply", "--auto-approve")
    assert "0 uploaded, 1 started" in applied.stdout
    assert mutations(emu, before) == ["POST /v1/fine_tuning/jobs"]


def test_retry_shows_the_api_error(project: Project, emu: Emulator, clock: Clock,
                                   env: dict[str, str]) -> None:
    """A job with alpha's fingerprint on a file the service rejects: the plan says retry."""
    loaded = load_project(project.specs)
    alpha = next(m for m in loaded.desired.models if m.name == "alpha")
    meta = job_metadata(alpha, fingerprint=project.fingerprints()["alpha"],
                        repo=loaded.desired.repo, commit=loaded.desired.commit)
    with sdk_client(emu.base_url) as sdk:
        bad = sdk.files.create(file=("bad.jsonl", make_chat_jsonl(12, bad_line=3)),
                               purpose="fine-tune")
        sdk.fine_tuning.jobs.create(model=BASE, training_file=bad.id, metadata=meta)
    clock.now += 120
    text = ftops(project, "plan")
    assert "the example has no assistant message" in text.stdout
    assert actions(ftops(project, "plan", "--json"))["model.alpha"] == "retry"
    applied = ftops(project, "apply", "--auto-approve")
    assert "3 started" in applied.stdout
    assert_exactly_once(emu, project)


def test_chained_model_is_blocked_then_trained(project: Project, emu: Emulator, clock: Clock,
                                               env: dict[str, str]) -> None:
    project.write({"parent": model("train-a", suffix="parent"),
                   "child": model("train-b", base="parent", suffix="child")})
    project.commit("chain")
    assert actions(ftops(project, "plan", "--json"))["model.child"] == "blocked"
    first = ftops(project, "apply", "--auto-approve")
    assert first.exit_code == 0
    assert "model child: not started: waits for parent" in first.stdout
    clock.now += 120
    second = ftops(project, "apply", "--auto-approve")
    assert "1 started" in second.stdout
    _, jobs = account(emu)
    child = next(j for j in jobs if j.metadata["ftops_model"] == "child")
    parent = next(j for j in jobs if j.metadata["ftops_model"] == "parent")
    assert child.model == parent.fine_tuned_model


def test_prune_cancels_deletes_and_models_only_when_allowed(
        project: Project, emu: Emulator, clock: Clock, env: dict[str, str]) -> None:
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    clock.now += 120  # alpha, beta, gamma succeed
    project.write({"alpha": THREE["alpha"], "beta": model("train-b", epochs=5, suffix="beta")})
    project.commit("drop gamma, retrain beta")
    assert ftops(project, "apply", "--auto-approve").exit_code == 0  # beta's new job runs
    project.write({"alpha": THREE["alpha"]}, data={"train-a": make_chat_jsonl(12, tag="a")})
    project.commit("only alpha")
    _, jobs = account(emu)
    running = next(j.id for j in jobs if j.status in LIVE)
    gamma = next(j.fine_tuned_model for j in jobs if j.metadata["ftops_model"] == "gamma")
    old_beta = next(j.fine_tuned_model for j in jobs if j.metadata["ftops_model"] == "beta"
                    and j.fine_tuned_model)
    plain = actions(ftops(project, "plan", "--json", "--prune"))
    assert plain[f"job.{running}"] == "cancel"
    assert not any(k.startswith(("fine_tuned_model.", "file.")) for k in plain)  # beta runs on it
    allowed = actions(ftops(project, "plan", "--json", "--prune", "--allow-delete-models"))
    assert allowed[f"fine_tuned_model.{gamma}"] == "delete"
    assert allowed[f"fine_tuned_model.{old_beta}"] == "delete"
    text = ftops(project, "plan", "--prune", "--allow-delete-models").stdout
    minus = sorted(line.split()[:3] for line in text.splitlines() if line.startswith("  - "))
    assert minus == sorted([["-", "cancel", f"job.{running}"],
                            ["-", "delete", f"fine_tuned_model.{gamma}"],
                            ["-", "delete", f"fine_tuned_model.{old_beta}"]])
    assert "0 to upload, 0 to train, 0 to replace, 2 to delete, 1 to cancel" in text
    assert mutations(emu).count("POST /v1/fine_tuning/jobs") == 4
    before = len(log(emu))
    result = ftops(project, "apply", "--auto-approve", "--prune", "--allow-delete-models")
    assert result.exit_code == 0, result.output
    assert sorted(mutations(emu, before)) == [f"DELETE /v1/models/{old_beta}",
                                              f"DELETE /v1/models/{gamma}",
                                              f"POST /v1/fine_tuning/jobs/{running}/cancel"]
    files, _ = account(emu)
    train_b = next(f.id for f in files if f.filename == ftops_name(make_chat_jsonl(12, tag="b")))
    unused = actions(ftops(project, "plan", "--json", "--prune"))
    assert unused == {"model.alpha": "ok", f"file.{train_b}": "delete"}
    assert ftops(project, "apply", "--auto-approve", "--prune").exit_code == 0
    assert set(actions(ftops(project, "plan", "--json", "--prune",
                             "--allow-delete-models")).values()) == {"ok"}


# --- saved plans -------------------------------------------------------------------------------


def test_stale_plan_after_account_change(project: Project, emu: Emulator, env: dict[str, str],
                                         tmp_path: Path) -> None:
    saved = tmp_path / "p.json"
    assert ftops(project, "plan", "--out", str(saved)).exit_code == 0
    with sdk_client(emu.base_url) as sdk:  # someone else uploads alpha's dataset meanwhile
        data = (project.specs / "data" / "train-a.jsonl").read_bytes()
        sdk.files.create(file=(ftops_name(data), data), purpose="fine-tune")
    before = len(log(emu))
    result = ftops(project, "apply", str(saved))
    assert result.exit_code == 1
    assert "stale" in result.stderr
    assert mutations(emu, before) == []


def test_stale_plan_after_dataset_change(project: Project, emu: Emulator, env: dict[str, str],
                                         tmp_path: Path) -> None:
    saved = tmp_path / "p.json"
    assert ftops(project, "plan", "--out", str(saved)).exit_code == 0
    (project.specs / "data" / "train-b.jsonl").write_bytes(make_chat_jsonl(13, tag="b"))
    project.commit("more data")
    result = ftops(project, "apply", str(saved))
    assert result.exit_code == 1
    assert "stale" in result.stderr
    assert mutations(emu) == []


def test_fresh_saved_plan_applies(project: Project, emu: Emulator, env: dict[str, str],
                                  tmp_path: Path) -> None:
    saved = tmp_path / "p.json"
    assert ftops(project, "plan", "--out", str(saved)).exit_code == 0
    result = ftops(project, "apply", str(saved))
    assert result.exit_code == 0, result.output
    assert "2 uploaded, 3 started" in result.stdout


# --- refusals: nothing mutated ------------------------------------------------------------------


@pytest.mark.parametrize(("file", "text", "line", "needle"), [
    ("models.yaml", "models:\n  alpha:\n    base: mini\n    training: [unclosed\n", 4, ""),
    ("models.yaml", "models:\n  alpha:\n    base: mini\n    training: train-a\n    epochs: 3\n",
     5, "epochs"),
])
def test_bad_spec_is_one_line_and_no_request(project: Project, emu: Emulator,
                                             env: dict[str, str], file: str, text: str,
                                             line: int, needle: str) -> None:
    (project.specs / file).write_text(text)
    for command in (("plan", "--detailed-exitcode"), ("apply", "--auto-approve", "--allow-dirty")):
        result = ftops(project, *command)
        assert result.exit_code == 1
        first = result.stderr.splitlines()[0]
        assert first.startswith("Error: ")
        assert f"{file}:{line}" in first
        assert needle in first
        assert "Traceback" not in result.output
    assert log(emu) == []


def test_bad_dataset_is_one_line_and_no_request(project: Project, emu: Emulator,
                                                env: dict[str, str]) -> None:
    (project.specs / "data" / "train-b.jsonl").write_bytes(make_chat_jsonl(12, bad_line=7))
    project.commit("broken")
    result = ftops(project, "apply", "--auto-approve")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert "train-b.jsonl:7" in result.stderr
    assert log(emu) == []


def test_apply_refuses_uncommitted_changes(project: Project, emu: Emulator,
                                           env: dict[str, str]) -> None:
    (project.specs / "data" / "train-a.jsonl").write_bytes(make_chat_jsonl(14, tag="a"))
    result = ftops(project, "apply", "--auto-approve")
    assert result.exit_code == 1
    assert "uncommitted changes" in result.stderr
    assert "train-a.jsonl" in result.stderr
    assert log(emu) == []
    assert ftops(project, "apply", "--auto-approve", "--allow-dirty").exit_code == 0


def test_apply_off_terminal_needs_auto_approve(project: Project, emu: Emulator,
                                               env: dict[str, str]) -> None:
    result = ftops(project, "apply")
    assert result.exit_code == 1
    assert "--auto-approve" in result.stderr
    assert mutations(emu) == []
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    nothing = ftops(project, "apply")  # only pending jobs: nothing to approve
    assert nothing.exit_code == 0, nothing.output
    assert "Apply complete: 0 uploaded, 0 started" in nothing.stdout


# --- secrets -----------------------------------------------------------------------------------


def test_key_never_appears(project: Project, emu: Emulator, clock: Clock, env: dict[str, str],
                           tmp_path: Path) -> None:
    saved = tmp_path / "p.json"
    outputs = [ftops(project, "plan", "--out", str(saved)),
               ftops(project, "plan", "--json"),
               ftops(project, "apply", str(saved))]
    clock.now += 120
    outputs += [ftops(project, "status", "--json"), ftops(project, "wait", "--timeout", "5")]
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert KEY not in result.output
    assert KEY not in saved.read_text()
    assert KEY not in (project.root / LOCK_FILE).read_text()


def test_missing_key_is_one_line(project: Project, emu: Emulator, env: dict[str, str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    result = ftops(project, "plan")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no API key: OPENAI_API_KEY is not set")
    assert len(result.stderr.splitlines()) == 1
    assert log(emu) == []


# --- a gate in front of the emulator: answers the emulator cannot give ----------------------------


Rule = Callable[[str, str], tuple[int, dict[str, Any]] | None]


class Gate:
    """A real HTTP server that forwards to the emulator unless ``rule(method, path)`` answers."""

    def __init__(self, upstream: str, rule: Rule) -> None:
        target = urlsplit(upstream)
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = rule(self.command, self.path)
                if answer is not None:
                    status, payload = answer
                    data = json.dumps(payload).encode()
                    headers = {"Content-Type": "application/json", "retry-after-ms": "10"}
                else:
                    conn = http.client.HTTPConnection(target.hostname or "", target.port)
                    forward = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    conn.request(self.command, self.path, body=body or None, headers=forward)
                    reply = conn.getresponse()
                    status, data = reply.status, reply.read()
                    headers = {"Content-Type": reply.getheader("Content-Type") or ""}
                    conn.close()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        gate.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_401_never_echoes_the_key(project: Project, emu: Emulator, env: dict[str, str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type":
                      "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    gate = Gate(emu.base_url, lambda _m, _p: (401, body))
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", gate.base_url)
        for command in (("plan",), ("apply", "--auto-approve"), ("status",)):
            result = ftops(project, *command)
            assert result.exit_code == 1
            assert result.stderr == ("Error: the API rejected the key (401): check OPENAI_API_KEY, "
                                    "or the api_key_env of the provider in use\n")
            assert KEY not in result.output
    finally:
        gate.close()


def test_too_many_active_jobs_defers_the_rest(project: Project, emu: Emulator,
                                              env: dict[str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []
    lock = threading.Lock()

    def rule(method: str, path: str) -> tuple[int, dict[str, Any]] | None:
        if method == "POST" and path == "/v1/fine_tuning/jobs":
            with lock:
                if created:
                    return 429, {"error": {"message": "Too many active fine-tuning jobs.",
                                           "type": "rate_limit_error", "param": None,
                                           "code": "rate_limit_exceeded"}}
                created.append(path)
        return None

    gate = Gate(emu.base_url, rule)
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", gate.base_url)
        result = ftops(project, "apply", "--auto-approve")
    finally:
        gate.close()
    assert result.exit_code == 0, result.output
    assert "2 uploaded, 1 started" in result.stdout
    deferred = [line for line in result.stdout.splitlines() if "not started" in line]
    assert len(deferred) == 2
    assert all("Too many active fine-tuning jobs" in line for line in deferred)
    assert mutations(emu).count("POST /v1/fine_tuning/jobs") == 1


def test_job_trains_on_the_copy_a_concurrent_apply_kept(project: Project, emu: Emulator,
                                                        env: dict[str, str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another apply deleted the files this one uploaded, keeping copies of its own: the job
    create answers 400 for the file, and apply trains on the kept copy instead of failing."""
    swapped: list[str] = []

    def rule(method: str, path: str) -> None:
        if method == "POST" and path == "/v1/fine_tuning/jobs" and not swapped:
            with sdk_client(emu.base_url) as sdk:
                for old in sdk.files.list(purpose="fine-tune"):
                    data = sdk.files.content(old.id).content
                    sdk.files.create(file=(old.filename, data), purpose="fine-tune")
                    sdk.files.delete(old.id)
                    swapped.append(old.id)

    gate = Gate(emu.base_url, rule)
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", gate.base_url)
        result = ftops(project, "apply", "--auto-approve", "--parallel", "1")
    finally:
        gate.close()
    assert result.exit_code == 0, result.output
    assert "2 uploaded, 3 started" in result.stdout
    files, jobs = account(emu)
    assert len(swapped) == 2
    assert {j.training_file for j in jobs} <= {f.id for f in files}
    assert_exactly_once(emu, project)


# --- wait ----------------------------------------------------------------------------------------


def test_wait_times_out_then_succeeds(project: Project, emu: Emulator, clock: Clock,
                                      env: dict[str, str]) -> None:
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    late = ftops(project, "wait", "alpha", "--timeout", "0")
    assert late.exit_code == 1
    assert "timed out" in late.stderr
    clock.now += 120
    done = ftops(project, "wait", "alpha", "--timeout", "5")
    assert done.exit_code == 0
    assert done.stdout.splitlines()[-1].startswith("alpha: succeeded ft:")
    assert project.lock()["models"]["alpha"]["status"] == "succeeded"


def test_wait_fails_when_the_job_fails(project: Project, emu: Emulator, clock: Clock,
                                       env: dict[str, str]) -> None:
    loaded = load_project(project.specs)
    beta = next(m for m in loaded.desired.models if m.name == "beta")
    meta = job_metadata(beta, fingerprint=project.fingerprints()["beta"],
                        repo=loaded.desired.repo, commit=loaded.desired.commit)
    with sdk_client(emu.base_url) as sdk:
        bad = sdk.files.create(file=("bad.jsonl", make_chat_jsonl(5)), purpose="fine-tune")
        sdk.fine_tuning.jobs.create(model=BASE, training_file=bad.id, metadata=meta)
    clock.now += 120
    result = ftops(project, "wait", "beta", "--timeout", "5")
    assert result.exit_code == 1
    assert "beta: failed" in result.stdout


def test_wait_unknown_model(project: Project, emu: Emulator, env: dict[str, str]) -> None:
    result = ftops(project, "wait", "nope")
    assert result.exit_code == 1
    assert result.stderr == "Error: no such model: nope\n"


# --- faults --------------------------------------------------------------------------------------


def test_500_after_create_duplicate_is_removed(project: Project, env: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    project.write({"alpha": THREE["alpha"]}, data={"train-a": make_chat_jsonl(12, tag="a")})
    project.commit("one model")
    with Emulator(job_seconds=60, fault_rate=1.0, faults=("500-after-create",),
                  retry_after=0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = ftops(project, "apply", "--auto-approve")
        assert result.exit_code == 0, result.output
        assert "removed duplicate file" in result.stdout
        assert "removed duplicate job" in result.stdout
        files, jobs = account(server)
        assert len(files) == 1
        assert [j.status for j in jobs if j.status in LIVE] != []
        assert len([j for j in jobs if j.status in LIVE]) == 1
        assert mutations(server).count("POST /v1/files") >= 2  # the SDK's retry made a duplicate


def test_random_faults_converge(project: Project, env: dict[str, str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(job_seconds=60, fault_rate=0.25, seed=7, retry_after=0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        codes = []
        for _ in range(10):
            result = ftops(project, "apply", "--auto-approve")
            codes.append(result.exit_code)
            if result.exit_code == 0:
                break
        assert codes[-1] == 0 and set(codes) <= {0, 1}
        faults = Counter(r["fault"] for r in log(server) if r["fault"])
        assert len(faults) >= 3
        assert_exactly_once(server, project)


# --- crashes and races: real processes ----------------------------------------------------------


def spawn(project: Project, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(FTOPS), "apply", "--auto-approve", "--specs",
                             str(project.specs)], env=env, cwd=project.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_at_several_moments_then_finish(project: Project, env: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run is killed (SIGKILL) right after the server made its first change, its reply
    possibly still on the way, until a run has nothing left to do: nothing exists twice."""
    with Emulator(job_seconds=60, latency_ms=30) as server:
        env = {**env, "OPENAI_BASE_URL": server.base_url}
        killed: list[list[str]] = []
        for _ in range(6):
            start = len(server.requests())
            proc = spawn(project, env)
            deadline = time.monotonic() + 20
            while not mutations(server, start) and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.002)
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed.append(mutations(server, start))
        assert len(killed) >= 2
        assert "POST /v1/files" in killed[0]
        assert any("POST /v1/fine_tuning/jobs" in run for run in killed)
        final = spawn(project, env)
        out, err = final.communicate(timeout=30)
        assert final.returncode == 0, err.decode()
        assert KEY.encode() not in out + err
        assert_exactly_once(server, project)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        assert "Apply complete: 0 uploaded, 0 started" in ftops(project, "apply",
                                                                "--auto-approve").stdout


def test_two_applies_at_once(project: Project, env: dict[str, str]) -> None:
    with Emulator(job_seconds=60, latency_ms=20) as server:
        env = {**env, "OPENAI_BASE_URL": server.base_url}
        procs = [spawn(project, env), spawn(project, env)]
        results = [p.communicate(timeout=30) for p in procs]
        # Each completes, or (when the other's uploads or jobs show up between its plan and
        # its execution) refuses before any mutation, saying what changed.
        codes = [p.returncode for p in procs]
        assert 0 in codes and set(codes) <= {0, 1}, [r[1] for r in results]
        for proc, (_, err) in zip(procs, results, strict=True):
            if proc.returncode == 1:
                assert err.startswith(b"Error: The account changed since the plan was shown: ")
        assert_exactly_once(server, project)


# --- reads scale with pages, apply runs in parallel, chains in one run -------------------------


def test_plan_reads_pages_not_models(project: Project, emu: Emulator,
                                     env: dict[str, str]) -> None:
    names = [f"m{i:02d}" for i in range(30)]
    project.write({n: model("train-a" if i % 2 else "train-b", suffix=n)
                   for i, n in enumerate(names)})
    project.commit("thirty models")
    repo = load_project(project.specs).desired.repo
    data = (project.specs / "data" / "train-a.jsonl").read_bytes()
    with sdk_client(emu.base_url) as sdk:
        file_id = sdk.files.create(file=(ftops_name(data), data), purpose="fine-tune").id
        for k in range(250):  # history: earlier versions of the models, 3 pages of jobs
            sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id, metadata={
                "ftops_repo": repo, "ftops_model": names[k % 30],
                "ftops_fingerprint": f"old-{k}"})
    before = len(log(emu))
    result = ftops(project, "plan", "--json")
    assert result.exit_code == 0, result.output
    assert set(actions(result).values()) == {"upload", "replace"}
    reads = log(emu)[before:]
    assert {r["method"] for r in reads} == {"GET"}
    assert len(reads) <= 6  # files, 3 pages of jobs, models: not one read per model


class InFlight:
    """A Gate rule that holds matching requests briefly and records how many overlapped."""

    def __init__(self, method: str, *paths: str) -> None:
        self.method, self.paths = method, paths
        self.now = self.peak = self.seen = 0
        self.lock = threading.Lock()

    def __call__(self, method: str, path: str) -> None:
        if method != self.method or not any(p in path for p in self.paths):
            return
        with self.lock:
            self.now += 1
            self.seen += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.1)
        with self.lock:
            self.now -= 1


def test_large_dataset_goes_up_in_parallel_parts(emu: Emulator, tmp_path: Path) -> None:
    data = make_chat_jsonl(400, tag="big")
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    part = len(data) // 8 + 1
    for workers in (4, 1):
        rule = InFlight("POST", "/parts")
        gate = Gate(emu.base_url, rule)
        start = len(log(emu))
        try:
            with sdk_client(gate.base_url) as sdk:
                remote = Remote(sdk, repo="r")
                done = remote.upload(path, sha, parallel=workers, threshold=1000,
                                     part_size=part)
                assert sdk.files.content(done.id).content == data
        finally:
            gate.close()
        assert (done.filename, done.bytes) == (ftops_name(data), len(data))
        sent = mutations(emu, start)
        assert sent[0] == "POST /v1/uploads"
        assert sent[-1].startswith("POST /v1/uploads/upload_") and sent[-1].endswith("/complete")
        assert len([s for s in sent if s.endswith("/parts")]) == 8
        assert rule.seen == 8
        assert rule.peak == workers if workers == 1 else rule.peak >= 2
    small = tmp_path / "small.jsonl"
    small.write_bytes(make_chat_jsonl(3, tag="small"))
    start = len(log(emu))
    with sdk_client(emu.base_url) as sdk:
        Remote(sdk, repo="r").upload(small, hashlib.sha256(small.read_bytes()).hexdigest())
    assert mutations(emu, start) == ["POST /v1/files"]


def test_upload_refuses_bytes_that_do_not_match_the_planned_hash(emu: Emulator,
                                                                  tmp_path: Path) -> None:
    planned = make_chat_jsonl(400, tag="planned")
    path = tmp_path / "data.jsonl"
    path.write_bytes(make_chat_jsonl(400, tag="edited"))  # edited after the plan hashed it
    sha = hashlib.sha256(planned).hexdigest()
    with sdk_client(emu.base_url) as sdk:
        remote = Remote(sdk, repo="r")
        for threshold in (1000, len(planned) * 2):  # in parts, then in one request
            start = len(log(emu))
            with pytest.raises(FtopsError, match="changed since it was planned"):
                remote.upload(path, sha, threshold=threshold, part_size=len(planned) // 4)
            sent = mutations(emu, start)
            assert not any(s == "POST /v1/files" or s.endswith("/complete") for s in sent), sent
            if threshold == 1000:
                assert sent[-1].endswith("/cancel")
        assert remote.files() == ()


def test_parallel_option_bounds_concurrent_creates(project: Project, env: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    peaks = {}
    for option in (["--parallel", "1"], []):
        with Emulator(job_seconds=60) as server:
            rule = InFlight("POST", "/v1/files", "/v1/fine_tuning/jobs")
            gate = Gate(server.base_url, rule)
            try:
                monkeypatch.setenv("OPENAI_BASE_URL", gate.base_url)
                result = ftops(project, "apply", "--auto-approve", *option)
            finally:
                gate.close()
            assert result.exit_code == 0, result.output
            assert "2 uploaded, 3 started" in result.stdout
            assert rule.seen == 5
            peaks[" ".join(option) or "default"] = rule.peak
    assert peaks["--parallel 1"] == 1
    assert peaks["default"] >= 2


def test_one_look_serves_a_round_of_creates(project: Project, env: dict[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Each create is checked and settled by a look, but a round's creates share it: at
    --parallel N a round sends one look and N-1 creates, at --parallel 1 they alternate."""
    n = 7
    names = [f"m{i}" for i in range(n)]
    project.write({name: model(f"d{i}", suffix=name) for i, name in enumerate(names)},
                  data={f"d{i}": make_chat_jsonl(12, tag=f"d{i}") for i in range(n)})
    project.commit("seven models, seven datasets")
    looks = {}
    for option in (["--parallel", "1"], ["--parallel", "4"]):
        with Emulator(job_seconds=60) as server:
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            result = ftops(project, "apply", "--auto-approve", *option)
            assert result.exit_code == 0, result.output
            assert f"{n} uploaded, {n} started" in result.stdout
            gets = Counter(r["path"] for r in log(server) if r["method"] == "GET")
            looks[option[1]] = (gets["/v1/files"], gets["/v1/fine_tuning/jobs"])
    # The reads around the pipeline (plan, re-read, mend, lock) are the same in both runs.
    alternate, shared = n + 1, -(-n // 3) + 2
    assert [p - d for p, d in zip(looks["1"], looks["4"], strict=True)] == [alternate - shared] * 2


def test_recent_jobs_reads_only_the_newest_page(emu: Emulator, clock: Clock) -> None:
    with sdk_client(emu.base_url) as sdk:
        data = make_chat_jsonl(12, tag="a")
        file_id = sdk.files.create(file=(ftops_name(data), data), purpose="fine-tune").id

        def create(k: int) -> None:
            sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id,
                                        metadata={"ftops_repo": "r", "ftops_fingerprint": str(k)})

        for k in range(250):  # 3 pages of older jobs
            create(k)
        clock.now += 10
        create(250)
        create(251)
        remote = Remote(sdk, repo="r")
        before = len(log(emu))
        recent = remote.recent_jobs(int(clock.now))
        assert len(log(emu)) - before == 1
        assert sorted(j.metadata["ftops_fingerprint"] for j in recent) == ["250", "251"]
        assert len(remote.recent_jobs(0)) == 252


def test_chain_trains_in_order_in_one_apply_with_wait(project: Project, env: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    project.write({"parent": model("train-a", suffix="parent"),
                   "child": model("train-b", base="parent", suffix="child")})
    project.commit("chain")
    with Emulator(job_seconds=0.5) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = ftops(project, "apply", "--auto-approve", "--wait", "--timeout", "60")
        assert result.exit_code == 0, result.output
        assert "2 uploaded, 2 started" in result.stdout
        _, jobs = account(server)
    parent = next(j for j in jobs if j.metadata["ftops_model"] == "parent")
    child = next(j for j in jobs if j.metadata["ftops_model"] == "child")
    assert parent.status == child.status == "succeeded"
    assert child.model == parent.fine_tuned_model
    out = result.stdout
    # events are printed as they come, the parent's before the child's job exists
    created = out.index(f"model child: Created fine-tuning job: {child.id}")
    assert out.index(f"model parent: Created fine-tuning job: {parent.id}") < created
    assert out.index(f"model parent: New fine-tuned model created: {parent.fine_tuned_model}") \
        < created
    locked = project.lock()["models"]
    assert locked["child"]["fine_tuned_model"] == child.fine_tuned_model
    assert locked["parent"]["status"] == "succeeded"


def test_emulator_flag_needs_no_key_and_keeps_state_under_dot_ftops(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    applied = ftops(project, "apply", "--emulator", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "2 uploaded, 3 started" in applied.stdout
    assert (project.root / ".ftops" / "emulator" / "state.json").is_file()
    # each command starts its own emulator: only the saved state links them
    assert set(actions(ftops(project, "plan", "--emulator", "--json")).values()) <= {
        "pending", "ok"}
    waited = ftops(project, "wait", "--emulator", "--timeout", "60")
    assert waited.exit_code == 0, waited.output
    ids = {line.split()[0].rstrip(":"): line.split()[-1] for line in waited.stdout.splitlines()
           if ": succeeded ft:" in line}
    assert sorted(ids) == ["alpha", "beta", "gamma"]
    assert f"model alpha: New fine-tuned model created: {ids['alpha']}" in waited.stdout
    status = json.loads(ftops(project, "status", "--emulator", "--json").stdout)
    assert {r["name"]: r["fine_tuned_model"] for r in status["models"]} == ids
    assert {n: e["fine_tuned_model"] for n, e in project.lock()["models"].items()} == ids


def test_apply_asks_for_confirmation_on_a_terminal(project: Project, emu: Emulator,
                                                   env: dict[str, str]) -> None:
    """A real terminal (a pty) on stdin: `n` changes nothing, `y` applies."""
    for answer, code in ((b"n\n", 1), (b"y\n", 0)):
        primary, secondary = os.openpty()
        proc = subprocess.Popen([str(FTOPS), "apply", "--specs", str(project.specs)], env=env,
                                cwd=project.root, stdin=secondary, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        os.close(secondary)
        os.write(primary, answer)
        out, err = proc.communicate(timeout=60)
        os.close(primary)
        assert proc.returncode == code, err.decode()
        assert "Apply these changes?" in out.decode()
        if code:
            assert err.decode() == "Error: apply cancelled; nothing was changed\n"
            assert mutations(emu) == []
        else:
            assert "Apply complete: 2 uploaded, 3 started" in out.decode()
