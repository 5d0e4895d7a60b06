"""The main flows on three days: inside OpenAI's training window (2026-12-01), after its cut-off
for new jobs (2027-01-07) and after its bases shut down (2027-06-01). FTOPS_TODAY pins the day
for this process and every emulator it starts, as it would for a user's CI."""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import git
import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import raw_request
from fake_github import BOT, FakeGitHub
from test_actions_e2e import TOKEN, World

from ftops.cli import main
from ftops.emulator import Emulator

SPECS = Path(__file__).resolve().parent.parent / "specs"
CLOSED = ("provider openai accepts no new fine-tuning jobs since 2027-01-06: 2 models cannot be "
          "trained (support-bot, support-bot-tone); see `ftops migrate` or choose another provider")


def _with_eval(specs: Path) -> None:
    """The demo specs plus an eval on support-bot (gate at 0: these tests are about dates)."""
    models = specs / "models.yaml"
    raw = yaml.safe_load(models.read_text())
    raw["models"]["support-bot"]["eval"] = "quality"
    models.write_text(yaml.safe_dump(raw, sort_keys=False))
    (specs / "evals.yaml").write_text(yaml.safe_dump({"evals": {"quality": {
        "dataset": "support-val", "checks": ["contains"], "min_score": 0}}}))


@pytest.fixture
def world(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    root = tmp_path / "repo"
    shutil.copytree(SPECS, root / "specs")
    _with_eval(root / "specs")
    (root / ".gitignore").write_text(".ftops/\nftops.lock\n")
    repo = git.Repo.init(root, initial_branch="main")
    repo.index.add([".gitignore", "specs"])
    head = repo.index.commit("specs", author=git.Actor("Test", "test@example.com"))
    monkeypatch.chdir(root)
    with FakeGitHub({TOKEN: BOT}) as fake:
        yield World(root, repo, head.hexsha, head.hexsha, fake, emulator)


def ftops(world: World, *args: str, actions: str = "") -> Result:
    """The CLI in-process; ``actions`` = "pull_request" or "push" runs it as the Action does."""
    env = world.env(actions) if actions else {
        "GITHUB_ACTIONS": "", "OPENAI_BASE_URL": world.emulator.base_url,
        "OPENAI_API_KEY": "sk-calendar-test-key-000000"}
    return CliRunner().invoke(main, [args[0], "--specs", "specs", *args[1:]], env=env,
                              catch_exceptions=False)


def mutations(world: World) -> list[dict[str, object]]:
    log = raw_request(world.emulator.url + "/_emulator/requests").json()
    return [r for r in log if r["method"] not in ("GET", "HEAD")]


@pytest.mark.parametrize("day", ["2026-12-01", "2027-01-07", "2027-06-01"])
def test_a_new_account_trains_inside_the_window_and_is_refused_after(
        day: str, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_TODAY", day)
    assert ftops(world, "validate").exit_code == 0
    plan = ftops(world, "plan", "--detailed-exitcode")
    assert plan.output.startswith(f"as of {day} (FTOPS_TODAY)\n")
    pr = ftops(world, "plan", "--comment", actions="pull_request")
    (comment,) = world.comments()
    assert f"#### ftops plan · as of {day}" in comment["body"]
    apply = ftops(world, "apply", "--auto-approve", "--wait", actions="push")
    status = ftops(world, "status")
    if day == "2026-12-01":
        assert plan.exit_code == 2 and pr.exit_code == 0, plan.output + pr.output
        assert "+ train    model.support-bot" in plan.output
        assert apply.exit_code == 0, apply.output
        assert "Apply complete: 3 uploaded, 2 started" in apply.output
        assert "support-bot              ok" in status.output
        assert ftops(world, "eval", "--json").exit_code == 0
        return
    # After the cut-off: one grouped error naming both models, and nothing is sent.
    assert plan.exit_code == 1 and pr.exit_code == 1
    assert f"x provider.openai: {CLOSED}" in plan.output
    assert plan.output.count("accepts no new fine-tuning jobs") == 1
    as_json = json.loads(ftops(world, "plan", "--json").output)
    (error,) = as_json["errors"]
    assert [(p["subject"], p["path"]) for p in error["places"]] == [
        ("model.support-bot", "specs/models.yaml"), ("model.support-bot-tone", "specs/models.yaml")]
    for place in error["places"]:  # the PR comment names each model's file:line too
        assert f"`specs/models.yaml:{place['line']}` {place['subject']}" in comment["body"]
    assert as_json["today"] == day and as_json["pinned"] is True
    assert apply.exit_code == 1
    assert "accepts no new fine-tuning jobs since 2027-01-06" in apply.stderr
    assert mutations(world) == []
    assert status.output.startswith(f"as of {day} (FTOPS_TODAY)\n")


def test_models_trained_in_the_window_answer_until_their_base_shuts_down(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_TODAY", "2026-12-01")
    assert ftops(world, "apply", "--auto-approve", "--wait").exit_code == 0

    monkeypatch.setenv("FTOPS_TODAY", "2027-01-07")
    plan = ftops(world, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert "= ok       model.support-bot " in plan.output
    assert "No changes. The account matches the specs." in plan.output
    assert "2 models on gpt-4o-mini-2024-07-18 stop answering on 2027-01-14 (in 7 days)" \
        in plan.output
    assert ftops(world, "eval", "--json").exit_code == 0

    monkeypatch.setenv("FTOPS_TODAY", "2027-06-01")
    plan = ftops(world, "plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.output
    assert "! retired  model.support-bot " in plan.output
    assert "stopped answering on 2027-01-14" in plan.output
    status = ftops(world, "status")
    assert "support-bot              retired" in status.output
    assert "(stopped answering on 2027-01-14)" in status.output
    lock = yaml.safe_load((world.root / "ftops.lock").read_text())
    assert lock["models"]["support-bot"]["retired"] == "2027-01-14"
    evaluated = ftops(world, "eval")
    assert evaluated.exit_code == 1, evaluated.output
    assert "Traceback" not in evaluated.output
    pr = ftops(world, "plan", "--comment", actions="pull_request")
    assert pr.exit_code == 0, pr.output
    (comment,) = world.comments()
    assert "| ⛔ | retired | `model.support-bot` |" in comment["body"]
    apply = ftops(world, "apply", "--auto-approve", actions="push")
    assert apply.exit_code == 0, apply.output
    assert "Apply complete: 0 uploaded, 0 started, 0 pruned." in apply.output


@pytest.mark.parametrize(("day", "says"), [
    ("2026-12-01", None),
    ("2027-01-07", "the demo trains on Azure OpenAI's emulated dialect instead"),
    ("2027-06-01", "the demo runs as of 2027-03-31, its last day"),
])
def test_the_demo_works_on_any_day_and_says_where_it_trains(
        day: str, says: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_TODAY", day)
    monkeypatch.chdir(SPECS.parent)
    result = CliRunner().invoke(main, ["demo", "--job-seconds", "0"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Fine-tuned models (from ftops.lock):" in result.output
    assert "nothing left to do" in result.output
    if says is None:
        assert "[azure]" not in result.output
    else:
        assert says in result.output.splitlines()[0]


class _Relay(http.server.BaseHTTPRequestHandler):
    """Another OpenAI-compatible server: it relays to the emulator but does not say it is one
    (no X-Ftops-Emulator header), as a lab's own endpoint would not."""

    upstream = ""

    def _relay(self) -> None:
        parts = urlsplit(self.upstream)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("x-ftops-emulator", "content-length", "transfer-encoding",
                                   "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_DELETE = _relay

    def log_message(self, format: str, *args: object) -> None:  # quiet in tests
        pass


def test_an_endpoint_that_is_not_openai_or_the_emulator_keeps_its_own_dates(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTOPS_TODAY", "2027-01-07")
    direct = ftops(world, "plan")
    assert direct.exit_code == 1 and CLOSED in direct.output  # the emulator is held to OpenAI's
    handler = type("Relay", (_Relay,), {"upstream": world.emulator.url})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        lab = f"http://127.0.0.1:{server.server_address[1]}/v1"
        env = {"GITHUB_ACTIONS": "", "OPENAI_BASE_URL": lab, "OPENAI_API_KEY": "sk-lab-key-0000000"}
        relayed = CliRunner().invoke(main, ["plan", "--specs", "specs", "--detailed-exitcode"],
                                     env=env, catch_exceptions=False)
    finally:
        server.shutdown()
        server.server_close()
    assert relayed.exit_code == 2, relayed.output
    assert "+ train    model.support-bot" in relayed.output
    assert "accepts no new fine-tuning jobs" not in relayed.output
